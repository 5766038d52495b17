"""Checksums that let a reader tell a dataset wam wrote from a damaged one.

wam's writer records:
- per episode, in its meta/episodes row: `data/sha256` and `videos/<key>/sha256`, the SHA-256 of the
  data file and video files that hold it (written once, never rewritten);
- in meta/info.json, under `wam_integrity`: digests of the *committed content* of the files that are
  rewritten as episodes are added (the meta/episodes rows of committed episodes, file by file; the
  task list; stats.json) and of info.json itself. Content, not bytes: a kill between two steps of a
  commit leaves rows of an unfinished episode behind, which the reader ignores and the digests skip.

A reader verifies what it reads against them; a mismatch is a `DatasetError` naming the file. A dataset
made elsewhere has no such entries and is read unverified. Someone who edits a wam dataset's metadata
by hand on purpose removes the `wam_integrity` entry of info.json to accept the edit.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from wam.errors import DatasetError

KEY = "wam_integrity"
EDITED = f"changed after wam wrote it: the file is corrupt, or was edited (to accept an edit, remove '{KEY}' from meta/info.json)"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def digest(value: Any) -> str:
    """SHA-256 of a JSON-able value in canonical form (sorted keys, no spaces)."""
    return sha256_bytes(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())


def seal(info: dict, episodes: dict[str, str], tasks: list[str], stats: dict | None) -> dict:
    """`info` with its `wam_integrity` entry: digests of the committed meta content and of info itself."""
    entry = {"episodes": dict(sorted(episodes.items())), "tasks": digest(tasks),
             "stats": digest(stats) if stats is not None else None}
    sealed = {**info, KEY: entry}
    entry["info"] = digest(sealed)
    return sealed


def unseal(info: dict, where: Path) -> dict | None:
    """The `wam_integrity` entry of a loaded info.json after checking info.json against it (None: unsealed)."""
    entry = info.get(KEY)
    if entry is None:
        return None
    if not (isinstance(entry, dict) and isinstance(entry.get("info"), str) and isinstance(entry.get("episodes"), dict)
            and isinstance(entry.get("tasks"), str) and all(isinstance(v, str) for v in entry["episodes"].values())):
        raise DatasetError(f"{where}: the '{KEY}' entry is malformed (the file is corrupt)")
    body = {**info, KEY: {k: v for k, v in entry.items() if k != "info"}}
    if digest(body) != entry["info"]:
        raise DatasetError(f"{where}: {EDITED}")
    return entry


def verify(path: Path, data: bytes, expected: str | None, recorded_in: str = "meta/episodes") -> None:
    """Refuse file bytes whose SHA-256 is not the one recorded for them."""
    if expected is not None and sha256_bytes(data) != expected:
        raise DatasetError(f"{path}: its content does not match the checksum recorded in {recorded_in} "
                           "(the file is corrupt, truncated or was overwritten)")
