"""`wam data info` and `wam data view` on a small dataset."""

from __future__ import annotations

import av
from PIL import Image

from wam.cli import main


def test_info_lists_features_tasks_and_stats(tiny_dataset, capsys):
    root, _ = tiny_dataset
    assert main(["data", "info", str(root)]) == 0
    out = capsys.readouterr().out
    assert "episodes  3, frames 75" in out and "observation.images.cam" in out
    assert "2 episodes  task0" in out and "push the puck" in out and "action mean" in out


def test_view_writes_a_contact_sheet_and_a_video(tiny_dataset, tmp_path):
    root, _ = tiny_dataset
    assert main(["data", "view", str(root), "--episode", "1", "--out", str(tmp_path / "e.png")]) == 0
    sheet = Image.open(tmp_path / "e.png")
    assert sheet.width > 600 and sheet.height > 300
    assert main(["data", "view", str(root), "--episode", "2", "--out", str(tmp_path / "e.mp4")]) == 0
    with av.open(str(tmp_path / "e.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 30  # one frame per dataset frame


def test_view_bad_input(tiny_dataset, tmp_path, capsys):
    root, _ = tiny_dataset
    assert main(["data", "view", str(root), "--episode", "7"]) == 2
    assert "episodes 0..2" in capsys.readouterr().err
    assert main(["data", "view", str(root), "--out", str(tmp_path / "e.jpg")]) == 2
    assert main(["data", "info", str(tmp_path / "none")]) == 2
    assert "no dataset" in capsys.readouterr().err
