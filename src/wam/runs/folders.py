"""Output folders and files named by a flag (`--out`), created or refused with one clear line.

    root = output_dir(cfg.out)                  # collect, pretrain, train, eval, study
    path = output_file(args.out)                # imagine, data view, imagine-eval

An --out that is a file, lies under a file, cannot be created (permissions, a read-only or virtual
file system) or is not writable is a `WamError` naming the flag and the path, before any work starts.
"""

from __future__ import annotations

import os
from pathlib import Path

from wam.errors import WamError


def _blocking_file(path: Path) -> Path | None:
    """The first existing non-folder on the way to `path` (itself included), if any."""
    for part in [*reversed(path.parents), path]:
        if part.exists() and not part.is_dir():
            return part
    return None


def output_dir(path: str | Path, flag: str = "--out") -> Path:
    """Create the output folder `path` (and its parents) or explain why it cannot be one."""
    path = Path(path)
    blocker = _blocking_file(path)
    if blocker is not None:
        where = "is a file" if blocker == path else f"lies under {blocker}, which is a file"
        raise WamError(f"{flag} {path} {where}: give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WamError(f"{flag} {path}: cannot create this folder ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise WamError(f"{flag} {path}: this folder is not writable")
    return path


def output_file(path: str | Path, flag: str = "--out") -> Path:
    """Make sure the file `path` can be written: its folder exists (created) and it is not a folder."""
    path = Path(path)
    if path.is_dir():
        raise WamError(f"{flag} {path} is a folder: give a file name")
    output_dir(path.parent if str(path.parent) else Path("."), flag=f"{flag} {path}: folder")
    return path
