"""Atomic writes leave nothing behind: not on an error, and not after a writer killed mid-write."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from wam.data.files import temporary_tag, write_json_atomic, write_parquet_atomic
from wam.runs.lock import HOST


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_killed_writers_temporary_is_deleted_by_the_next_write(tmp_path):
    path, dead = tmp_path / "summary.json", _dead_pid()
    orphan = tmp_path / f"summary.json.tmp{dead}"  # what a SIGKILL between write and rename leaves
    running = tmp_path / f"summary.json.tmp{os.getppid()}"  # another live writer's, mid-write
    other = tmp_path / f"cell.json.tmp{dead}"  # another file's: its own next write sweeps it
    for f in (orphan, running, other):
        f.write_text("{")
    write_json_atomic({"a": 1}, path)
    assert json.loads(path.read_text()) == {"a": 1}
    assert not orphan.exists() and running.exists() and other.exists()


def test_only_this_hosts_dead_writers_are_swept(tmp_path):
    """On a shared filesystem another host's pid cannot be checked from here: its temporary is kept."""
    path, dead = tmp_path / "summary.json", _dead_pid()
    here = tmp_path / f"summary.json.tmp{dead}@{HOST}"
    there = tmp_path / f"summary.json.tmp{dead}@node-7.cluster"  # mid-write on another machine
    for f in (here, there):
        f.write_text("{")
    write_json_atomic({"a": 1}, path)
    assert not here.exists() and there.exists()
    assert temporary_tag() == f"{os.getpid()}@{HOST}"


def test_a_failed_write_leaves_no_temporary(tmp_path):
    (tmp_path / "info.json").mkdir()  # the rename fails after the temporary is written
    with pytest.raises(OSError):
        write_json_atomic({"x": 1}, tmp_path / "info.json")
    with pytest.raises(AttributeError):
        write_parquet_atomic("not a table", tmp_path / "file-000.parquet")  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == ["info.json"]
