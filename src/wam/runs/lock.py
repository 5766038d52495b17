"""One writer per folder: an advisory lock on every output folder a run writes.

    with folder_lock(cfg.out):            # or: @holding_lock(lambda cfg: cfg.out) on a workflow
        ...                               # no other wam process writes cfg.out meanwhile

`wam collect`, `pretrain`, `train`, `eval` and `study` hold the lock of their output folder while they
run. The lock is an OS file lock (`filelock`: flock on Unix) on `<folder>/.wam.lock`, which the system
drops when its process ends, however it ends. Beside it, `.wam.lock.json` names the holder (pid, command,
start time, host). A second run into the folder is refused at once with one line naming the holder
(`FolderInUse`, exit 2). A run killed before it could clean up leaves only its holder file: the next run
takes the lock over and prints a note naming the dead holder. A holder on another host (a filesystem
shared by several machines) cannot be checked from here: the note says so instead of calling it dead.

The same process may lock a folder it already holds (a study trains and evaluates cells inside its own
folder; a quickstart is a study): the lock counts its holders and the last one releases it. Under
torchrun/accelerate only rank 0 locks: the other ranks do not write.
"""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

from wam.errors import WamError
from wam.runs.folders import output_dir

LOCK_FILE, HOLDER_FILE = ".wam.lock", ".wam.lock.json"
_HELD: dict[Path, list] = {}  # resolved folder -> [FileLock, depth]: the locks this process holds
F = TypeVar("F", bound=Callable[..., Any])
HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"  # safe inside a file name


class FolderInUse(WamError):
    """Another live process holds the lock of an output folder."""


def _command() -> str:
    """This process's command line, as a person would type it (`wam train --out=...`)."""
    head = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    head = "wam" if head in ("wam", "__main__.py") else head
    line = " ".join([head, *sys.argv[1:]])
    return line if len(line) <= 200 else line[:197] + "..."


def holder(folder: str | Path) -> dict | None:
    """Who holds (or last held, if it died holding) the lock of `folder`: pid, command, started."""
    try:
        info = json.loads((Path(folder) / HOLDER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def describe(info: dict | None) -> str:
    if not info:
        return "a process that has not written its name yet"
    where = f" on {info['host']}" if info.get("host") not in (None, HOST) else ""
    return f"pid {info.get('pid')}{where}, '{info.get('command')}', started {info.get('started')}"


def process_alive(pid: Any) -> bool:
    """Whether a process with this id runs on this machine (a bad id: no)."""
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:  # a live process of another user
        return True
    return True


def writer_gone(pid: Any, host: str | None = None) -> bool:
    """Whether the process `pid` of `host` (None: this one) has surely ended: only a process of this host can be
    checked, so one of another host is never called gone."""
    return (host is None or host == HOST) and not process_alive(pid)


def _write_holder(folder: Path) -> None:
    info = {"pid": os.getpid(), "command": _command(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "host": HOST}
    tmp = folder / (HOLDER_FILE + ".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, folder / HOLDER_FILE)


def _acquire(folder: Path, key: Path) -> FileLock:
    lock = FileLock(str(key / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise FolderInUse(f"{folder} is in use by another wam run ({describe(holder(key))}); wait for it to "
                          f"finish, or write to another folder") from None
    except OSError as exc:
        raise WamError(f"cannot lock {folder}: {exc.strerror or exc}") from None
    previous = holder(key)
    host = previous.get("host", HOST) if previous else HOST  # records from before the host was written: this one
    if previous is not None and (previous.get("pid"), host) != (os.getpid(), HOST):
        if host != HOST:
            state = "ran on another host (its process cannot be checked from here) and released its lock"
        else:
            state = "is no longer running" if writer_gone(previous.get("pid")) else "released its lock without clean-up"
        print(f"note: {folder} was locked by {describe(previous)}, which {state}; taking the lock over",
              file=sys.stderr)
    _write_holder(key)
    return lock


@contextmanager
def folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold the lock of `folder` (created if needed) for the duration of the block; see the module doc."""
    if int(os.environ.get("RANK", "0") or 0) != 0:  # a non-zero rank of a distributed run writes nothing
        yield
        return
    folder = output_dir(folder)  # made here, or refused with one line naming --out and why
    key = folder.resolve()
    if key not in _HELD:
        _HELD[key] = [_acquire(folder, key), 0]
    _HELD[key][1] += 1
    try:
        yield
    finally:
        _HELD[key][1] -= 1
        if _HELD[key][1] == 0:
            lock = _HELD.pop(key)[0]
            (key / HOLDER_FILE).unlink(missing_ok=True)
            lock.release()


def holding_lock(folder_of: Callable[[Any], str | Path]) -> Callable[[F], F]:
    """Decorate a workflow `fn(cfg, ...)`: check `cfg`, then run `fn` holding the lock of `folder_of(cfg)`."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(cfg: Any, *args: Any, **kwargs: Any) -> Any:
            cfg.check()  # a bad config is refused before any folder is made
            with folder_lock(folder_of(cfg)):
                return fn(cfg, *args, **kwargs)

        return run  # type: ignore[return-value]

    return wrap
