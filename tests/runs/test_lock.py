"""One writer per folder: a second run is refused at once, naming the holder; a dead holder's lock is
taken over; the same process nests locks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wam.cli import main
from wam.errors import WamError
from wam.runs.lock import HOLDER_FILE, HOST, FolderInUse, folder_lock, holder

HOLD = """
import sys, time
from wam.runs.lock import folder_lock
with folder_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def held(tmp_path):
    """A real process holding the lock of tmp_path/out (killed with SIGKILL at the end)."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield out, proc
    finally:
        proc.kill()
        proc.wait()


def test_a_second_run_into_a_held_folder_is_refused_at_once(held):
    out, proc = held
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "wam", "train", f"--out={out}", "--data.path=/nowhere"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr
    assert f"{out} is in use by another wam run (pid {proc.pid}, " in lines[0] and "started 20" in lines[0]
    assert time.perf_counter() - start < 60  # refused before reading any data (the data path does not exist)
    assert holder(out)["pid"] == proc.pid  # the holder's record is untouched


@pytest.mark.parametrize("argv", [["collect", "--tasks=reach-v3"], ["pretrain", "--data.path=/nowhere"],
                                  ["train", "--data.path=/nowhere"]])
def test_every_writing_verb_takes_the_lock(held, argv, capsys):
    out, proc = held
    assert main([*argv, f"--out={out}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"in use by another wam run (pid {proc.pid}" in err[0]


def test_a_study_takes_the_lock(held, capsys):
    out, proc = held
    assert main(["study", "future_helps_acting", f"--out={out}"]) == 2
    assert f"in use by another wam run (pid {proc.pid}" in capsys.readouterr().err


def test_the_lock_of_a_killed_run_is_taken_over_with_a_note(held, capsys):
    out, proc = held
    os.kill(proc.pid, signal.SIGKILL)  # dies holding it: no clean-up, its holder file stays
    proc.wait()
    assert holder(out)["pid"] == proc.pid
    with folder_lock(out):
        assert holder(out)["pid"] == os.getpid()
    err = capsys.readouterr().err
    assert f"was locked by pid {proc.pid}" in err and "is no longer running; taking the lock over" in err
    assert not (out / HOLDER_FILE).exists()  # a clean release removes the record


def test_a_holder_on_another_host_is_named_by_host_not_called_dead(tmp_path, capsys):
    """On a filesystem shared by several machines a pid means nothing off its own host: the note says so."""
    out = tmp_path / "run"
    out.mkdir()
    record = {"pid": os.getpid() + 1, "command": "wam train", "started": "2026-12-04 10:00:00", "host": "node-7"}
    (out / HOLDER_FILE).write_text(json.dumps(record))
    with folder_lock(out):
        assert holder(out)["host"] == HOST
    err = capsys.readouterr().err
    assert f"locked by pid {os.getpid() + 1} on node-7," in err and "ran on another host" in err
    assert "no longer running" not in err


def test_the_same_process_nests_and_others_wait_for_the_last_release(tmp_path):
    out = tmp_path / "study"
    probe = "import sys\nfrom wam.runs.lock import folder_lock\nwith folder_lock(sys.argv[1]): pass"
    try_lock = lambda: subprocess.run([sys.executable, "-c", probe, str(out)], capture_output=True,  # noqa: E731
                                      text=True, timeout=60)
    with folder_lock(out):
        with folder_lock(out), folder_lock(out / "cells/a"):  # a study's cell inside its folder
            assert holder(out)["pid"] == os.getpid()
        assert holder(out)["pid"] == os.getpid()  # still held by the outer block
        refused = try_lock()
        assert refused.returncode != 0 and "FolderInUse" in refused.stderr
    assert try_lock().returncode == 0


def test_an_impossible_folder_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(WamError, match="lies under .*file, which is a file") as info:
        with folder_lock(tmp_path / "file" / "out"):
            pass
    assert not isinstance(info.value, FolderInUse)


def test_non_zero_ranks_do_not_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    with folder_lock(tmp_path / "x"):
        assert not Path(tmp_path / "x").exists()
