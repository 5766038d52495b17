"""`wam data merge`: two datasets into one (columns, frames, instructions, env_task/seed kept), resumed
after a partial merge, and a schema mismatch refused."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import FEATURES, IMAGE_KEY, episode_arrays, moving_square, write_dataset
from wam.cli import main
from wam.data.check import check_dataset
from wam.data.lerobot_format import LeRobotDataset
from wam.data.merge import merge_datasets
from wam.data.writer import LeRobotWriter
from wam.errors import ConfigError


def test_merge_two_datasets(tmp_path, capsys):
    write_dataset(tmp_path / "a", lengths=(20, 25), env_tasks=("reach-v3", "push-v3"))
    write_dataset(tmp_path / "b", lengths=(30,), tasks=("open the door",), env_tasks=("door-open-v3",))
    assert main(["data", "merge", str(tmp_path / "m"), str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "3 episodes from 2 datasets" in capsys.readouterr().out
    m, a, b = (LeRobotDataset(tmp_path / n) for n in "mab")
    sources = [(a, 0), (a, 1), (b, 0)]
    assert [e.length for e in m.episodes] == [20, 25, 30]
    assert [e.extras["env_task"] for e in m.episodes] == ["reach-v3", "push-v3", "door-open-v3"]
    assert [int(e.extras["seed"]) for e in m.episodes] == [0, 1, 0]
    assert [e.tasks[0] for e in m.episodes] == ["open the drawer", "push the puck", "open the door"]
    for i, (src, j) in enumerate(sources):
        for col in ("action", "observation.state"):
            assert np.array_equal(m.read_columns([col], [i])[col], src.read_columns([col], [j])[col])
        diff = np.abs(m.decode_frames(IMAGE_KEY, i).astype(int) - src.decode_frames(IMAGE_KEY, j).astype(int))
        assert diff.mean() < 3  # encoded once more
    assert not check_dataset(tmp_path / "m", full=True).problems


def test_merge_resumes_after_the_committed_episodes(tmp_path):
    write_dataset(tmp_path / "a", lengths=(20, 25))
    write_dataset(tmp_path / "b", lengths=(30,))
    merge_datasets([tmp_path / "a"], tmp_path / "m", progress=False)  # as if killed after a's episodes
    assert merge_datasets([tmp_path / "a", tmp_path / "b"], tmp_path / "m", progress=False) == 3
    assert [e.length for e in LeRobotDataset(tmp_path / "m").episodes] == [20, 25, 30]


def test_merge_refuses_another_schema(tmp_path):
    write_dataset(tmp_path / "a")
    other = {**FEATURES, IMAGE_KEY: {**FEATURES[IMAGE_KEY], "shape": [16, 16, 3]}}
    w = LeRobotWriter(tmp_path / "b", fps=10, features=other)
    w.add_episode("x", episode_arrays(5, 0), {IMAGE_KEY: moving_square(5, seed=0, size=16)})
    with pytest.raises(ConfigError, match="does not match"):
        merge_datasets([tmp_path / "a", tmp_path / "b"], tmp_path / "m", progress=False)
    with pytest.raises(ConfigError, match="also a source"):
        merge_datasets([tmp_path / "a"], tmp_path / "a", progress=False)
