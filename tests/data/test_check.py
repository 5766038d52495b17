"""`wam data check` (wam.data.check) and the checksums it verifies (wam.data.integrity).

The command's exit status and one-line output for damaged datasets are rows of tests/test_bad_inputs.py;
these tests cover what the table does not: each consistency check, interrupted commits, old datasets.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import FEATURES, IMAGE_KEY, episode_arrays, moving_square, unseal
from wam.data import writer as writer_module
from wam.data.check import check_dataset, require_clean, row_ranges
from wam.data.lerobot_format import LeRobotDataset
from wam.data.writer import LeRobotWriter
from wam.errors import ConfigError, DatasetError


def test_row_ranges():
    assert row_ranges(np.array([3, 4, 5, 9])) == "3-5, 9"
    assert row_ranges(np.array([0])) == "0"
    assert row_ranges(np.arange(0, 40, 2), most=2) == "0, 2, ... (20 rows)"


def test_clean_dataset_and_summary(tiny_dataset):
    root, _ = tiny_dataset
    report = check_dataset(root, full=True)
    assert report.problems == [] and report.sealed and report.files == 6
    assert "3 episodes, 75 frames" in report.summary() and "checksums verified" in report.summary()


def test_index_columns_that_disagree_are_named(tiny_dataset):
    root, _ = tiny_dataset
    unseal(root)  # so that only the consistency checks can see the damage
    path = root / "data/chunk-000/file-001.parquet"
    table = pq.read_table(path)
    frame_index = table.column("frame_index").to_numpy().copy()
    frame_index[4] = 7
    timestamp = table.column("timestamp").to_numpy().copy()
    timestamp[2] = 9.0
    table = table.set_column(table.schema.get_field_index("frame_index"), "frame_index", pa.array(frame_index))
    table = table.set_column(table.schema.get_field_index("timestamp"), "timestamp", pa.array(timestamp))
    pq.write_table(table, path)
    report = check_dataset(root)
    assert not report.sealed and "no checksums recorded" in report.summary()
    lines = report.lines()
    assert "data/chunk-000/file-001.parquet: episode 1: column 'frame_index': row 4 holds 7, expected 4" in lines
    assert any("column 'timestamp': row 2" in line for line in lines), lines
    with pytest.raises(DatasetError, match=r"frame_index.*\(and 1 more\); every problem: wam data check"):
        require_clean(LeRobotDataset(root))
    require_clean(LeRobotDataset(root), "off")
    with pytest.raises(ConfigError, match="data.check must be one of off, cheap, full"):
        require_clean(LeRobotDataset(root), "fast")


def test_a_flipped_byte_in_a_video_is_caught_by_its_checksum(tiny_dataset):
    root, written = tiny_dataset
    path = root / f"videos/{IMAGE_KEY}/chunk-000/file-001.mp4"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x20  # inside the frames: H.264 may decode it to other pixels without an error
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="file-001.mp4: its content does not match the checksum"):
        LeRobotDataset(root).decode_frames(IMAGE_KEY, 1)
    assert any("file-001.mp4: episode 1:" in line for line in check_dataset(root).lines())


def test_commit_interrupted_after_stats_keeps_the_committed_stats(tiny_dataset, monkeypatch):
    """A kill between stats.json and info.json: the reader uses the committed episodes' own statistics."""
    root, _ = tiny_dataset
    before = LeRobotDataset(root).stats
    real = writer_module.write_json_atomic

    def killed_at_info(data, path):
        if path.name == "info.json":
            raise KeyboardInterrupt
        real(data, path)

    writer = LeRobotWriter(root, 10, FEATURES)
    monkeypatch.setattr(writer_module, "write_json_atomic", killed_at_info)
    with pytest.raises(KeyboardInterrupt):
        writer.add_episode("push the puck", episode_arrays(11, 9), {IMAGE_KEY: moving_square(11)})
    ds = LeRobotDataset(root)
    assert ds.num_episodes == 3
    for key, stats in before.items():
        for name, value in stats.items():
            np.testing.assert_allclose(ds.stats[key][name], value, rtol=1e-12)
    assert check_dataset(root).problems == []


def test_an_old_dataset_is_read_unverified_and_sealed_when_appended_to(tiny_dataset):
    root, _ = tiny_dataset
    unseal(root)
    assert LeRobotDataset(root).sealed is None
    LeRobotWriter(root, 10, FEATURES).add_episode("push the puck", episode_arrays(8, 5), {IMAGE_KEY: moving_square(8)})
    ds = LeRobotDataset(root)
    assert ds.sealed is not None and ds.num_episodes == 4
    assert check_dataset(root, full=True).problems == []
