"""Output folders and files named by --out: created, or refused with the flag and the path."""

from __future__ import annotations

import pytest

from wam.errors import WamError
from wam.runs.folders import output_dir, output_file


def test_output_dir_creates_nested_folders(tmp_path):
    assert output_dir(tmp_path / "a" / "b").is_dir()
    assert output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"  # existing: fine


def test_output_dir_refuses_files_and_what_cannot_be_created(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(WamError, match=r"--out .*/f is a file: give a folder"):
        output_dir(tmp_path / "f")
    with pytest.raises(WamError, match=r"lies under .*/f, which is a file"):
        output_dir(tmp_path / "f" / "run", flag="--out")
    with pytest.raises(WamError, match=r"--study.out /sys/wam_\w+/x: cannot create this folder"):
        output_dir("/sys/wam_test_folders/x", flag="--study.out")  # refused even to root


def test_output_file(tmp_path):
    assert output_file(tmp_path / "new" / "clip.mp4") == tmp_path / "new" / "clip.mp4"
    assert (tmp_path / "new").is_dir()
    with pytest.raises(WamError, match="is a folder: give a file name"):
        output_file(tmp_path / "new")
