"""Training windows: offsets, padding at episode edges, action-free reading, frame sources."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import IMAGE_KEY, drop_column, episode_arrays, moving_square
from wam.data.frames import ArrayFrames, VideoFrames, cached_frames
from wam.data.lerobot_format import LeRobotDataset
from wam.data.windows import WindowDataset, WindowSpec, make_loader, strided
from wam.data.writer import LeRobotWriter
from wam.errors import ConfigError, DatasetError

SPEC = WindowSpec(obs=(-1, 0), future=strided(3, 4), action=tuple(range(5)))


def test_sample_shapes_and_values(tiny_dataset):
    root, written = tiny_dataset
    w = WindowDataset(LeRobotDataset(root), SPEC)
    assert len(w) == 75
    s = w[20 + 7]  # episode 1, frame 7
    assert s["obs.image"].shape == (2, 3, 32, 32) and s["obs.image"].dtype == torch.uint8
    assert s["future.image"].shape == (3, 3, 32, 32)
    assert s["action"].shape == (5, 4) and s["obs.state"].shape == (2, 4)
    assert (s["episode_index"], s["frame_index"], s["task"]) == (1, 7, "push the puck")
    np.testing.assert_array_equal(s["action"].numpy(), written["data"][1]["action"][7:12])
    np.testing.assert_array_equal(s["obs.state"].numpy(), written["data"][1]["observation.state"][6:8])
    truth = written["frames"][1][[11, 15, 19]].transpose(0, 3, 1, 2).astype(np.int16)
    assert np.abs(s["future.image"].numpy().astype(np.int16) - truth).mean() < 6


def test_padding_masks_at_episode_edges(tiny_dataset):
    root, written = tiny_dataset
    w = WindowDataset(LeRobotDataset(root), SPEC)
    first = w[0]
    assert first["obs_is_pad"].tolist() == [True, False]
    assert torch.equal(first["obs.image"][0], first["obs.image"][1])  # edge frame repeated
    last = w[19]  # episode 0 (20 frames), frame 19
    assert last["future_is_pad"].tolist() == [True, True, True]
    assert last["action_is_pad"].tolist() == [False, True, True, True, True]
    np.testing.assert_array_equal(last["action"][4].numpy(), written["data"][0]["action"][19])
    mid = w[14]  # frame 14: futures 18 ok, 22 and 26 padded
    assert mid["future_is_pad"].tolist() == [False, True, True]
    assert w[20]["obs_is_pad"].tolist() == [True, False]  # episode 1 starts fresh, no leak from episode 0


@pytest.mark.parametrize("spec,needle", [
    (WindowSpec(obs=(1,)), "obs offsets must be <= 0"),
    (WindowSpec(obs=(0, -1)), "strictly increasing"),
    (WindowSpec(obs=(0,), future=(0, 4)), "future offsets must be > 0"),
    (WindowSpec(obs=(0,), future=(2.5,)), "integers"),
    (WindowSpec(obs=()), "at least one obs"),
    (WindowSpec(obs=(0,), future=(40,)), "offset 40 cannot be served"),
    (WindowSpec(obs=(0,), image_key="observation.images.top"), "no feature 'observation.images.top'"),
])
def test_offsets_that_cannot_be_served(tiny_dataset, spec, needle):
    root, _ = tiny_dataset
    with pytest.raises((ConfigError, DatasetError), match=needle):
        WindowDataset(LeRobotDataset(root), spec)


def test_action_free_never_reads_the_action_column(tiny_dataset):
    root, _ = tiny_dataset
    drop_column(root, "action")  # only action-free video left
    ds = LeRobotDataset(root)
    video_only = WindowDataset(ds, WindowSpec(obs=(0,), future=strided(2, 4)))
    sample = video_only[5]
    assert "action" not in sample and sample["future.image"].shape == (2, 3, 32, 32)
    with pytest.raises(DatasetError, match="action"):
        WindowDataset(ds, SPEC)  # asking for actions now fails, naming the column


def test_frame_sources_agree(tiny_dataset):
    root, _ = tiny_dataset
    ds = LeRobotDataset(root)
    cached = WindowDataset(ds, SPEC)
    from_video = WindowDataset(ds, SPEC, frames=VideoFrames(ds, IMAGE_KEY))
    in_memory = WindowDataset(ds, SPEC, frames=cached_frames(ds, IMAGE_KEY, in_memory=True))
    for i in (0, 13, 33, 74):
        a, b, c = cached[i], from_video[i], in_memory[i]
        assert torch.equal(a["future.image"], b["future.image"]) and torch.equal(a["obs.image"], c["obs.image"])


def test_cache_is_rebuilt_when_dataset_grows(tiny_dataset):
    root, _ = tiny_dataset
    ds = LeRobotDataset(root)
    first = cached_frames(ds, IMAGE_KEY, progress=False)
    assert first.frames.shape[0] == 75
    writer = LeRobotWriter(root, 10, {k: v for k, v in LeRobotDataset(root).features.items()
                                      if k not in ("timestamp", "frame_index", "episode_index", "index", "task_index")})
    writer.add_episode("push the puck", episode_arrays(6, 7), {IMAGE_KEY: moving_square(6)})
    again = cached_frames(LeRobotDataset(root), IMAGE_KEY, progress=False)
    assert again.frames.shape[0] == 81


def test_a_decode_never_touches_the_frames_another_run_has_mapped(tiny_dataset, monkeypatch):
    """Two runs side by side on one dataset: one re-decoding (here it fails half-way) must not truncate or
    rewrite the file the other has memory-mapped (it did: SIGBUS in the other run), nor leave files behind."""
    root, _ = tiny_dataset
    ds = LeRobotDataset(root)
    held = cached_frames(ds, IMAGE_KEY, image_size=24, progress=False).frames  # another run's mapping
    before = np.array(held)
    stamp = next((root / ".wam_cache").glob(f"{IMAGE_KEY}_24x24.json"))
    stamp.unlink()  # as if this run found the cache stale
    real = LeRobotDataset.decode_frames

    def broken(self, key, e):
        if e == 2:
            raise RuntimeError("killed mid-decode")
        return np.zeros_like(real(self, key, e))  # what a half-written file would hold

    monkeypatch.setattr(LeRobotDataset, "decode_frames", broken)
    with pytest.raises(RuntimeError, match="mid-decode"):
        cached_frames(LeRobotDataset(root), IMAGE_KEY, image_size=24, progress=False)
    assert np.array_equal(np.array(held), before)
    assert not list((root / ".wam_cache").glob("*.tmp"))
    monkeypatch.undo()
    again = cached_frames(LeRobotDataset(root), IMAGE_KEY, image_size=24, progress=False)
    assert np.array_equal(np.array(again.frames), before) and stamp.exists()


def test_a_killed_decodes_leftover_is_deleted_and_a_running_ones_kept(tiny_dataset):
    """SIGKILL skips the decode's cleanup, leaving a file as large as the cache: the next decode deletes it once
    its process is gone, and never a file another decode is still writing."""
    root, _ = tiny_dataset
    ds = LeRobotDataset(root)
    cached_frames(ds, IMAGE_KEY, image_size=24, progress=False)
    folder = root / ".wam_cache"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = folder / f"{IMAGE_KEY}_24x24.u8.{dead.pid}.tmp"
    running = folder / f"{IMAGE_KEY}_24x24.u8.{os.getppid()}.tmp"  # a live process's decode
    other = folder / f"{IMAGE_KEY}_16x16.u8.{dead.pid}.tmp"  # another size's, killed too
    remote = folder / f"{IMAGE_KEY}_24x24.u8.{dead.pid}@node-7.tmp"  # another host's, on a shared filesystem
    for f in (orphan, running, other, remote):
        f.write_bytes(b"half")
    next(folder.glob(f"{IMAGE_KEY}_24x24.json")).unlink()  # stale: decode again
    cached_frames(LeRobotDataset(root), IMAGE_KEY, image_size=24, progress=False)
    assert not orphan.exists() and not other.exists() and running.exists() and remote.exists()


def test_cache_resizes(tiny_dataset):
    root, _ = tiny_dataset
    small = cached_frames(LeRobotDataset(root), IMAGE_KEY, image_size=16, progress=False)
    assert small.frames.shape == (75, 16, 16, 3)


def test_subset_of_episodes_and_loader(tiny_dataset):
    root, _ = tiny_dataset
    w = WindowDataset(LeRobotDataset(root), SPEC, episodes=[2])
    assert len(w) == 30 and w[0]["episode_index"] == 2
    batch = next(iter(make_loader(w, batch_size=8, seed=0)))
    assert batch["obs.image"].shape == (8, 2, 3, 32, 32) and len(batch["task"]) == 8
    again = next(iter(make_loader(w, batch_size=8, seed=0)))
    assert torch.equal(batch["frame_index"], again["frame_index"])  # seeded shuffling
    with pytest.raises(ConfigError, match="episode 5 does not exist"):
        WindowDataset(LeRobotDataset(root), SPEC, episodes=[5])


def test_derived_arrays_are_served_at_the_obs_frames_of_the_whole_dataset(tiny_dataset):
    """`derived` rows are dataset rows: a subset of episodes reads its own frames' rows, not the subset's first."""
    root, _ = tiny_dataset
    ds = LeRobotDataset(root)
    rows = np.arange(ds.num_frames, dtype=np.float32)[:, None]  # (N, 1): each frame's dataset row
    w = WindowDataset(ds, SPEC, episodes=[2], derived={"row": rows})
    start = ds.num_frames - 30  # episode 2 is the last, 30 frames
    sample = w[4]
    picks = np.clip(4 + np.asarray(SPEC.obs), 0, 29)
    assert torch.equal(sample["obs.row"][:, 0], torch.from_numpy(start + picks.astype(np.float32)))
    with pytest.raises(ConfigError, match="one row per dataset frame"):
        WindowDataset(ds, SPEC, derived={"row": rows[:-1]})


def test_array_frames_direct():
    frames = np.arange(10 * 2 * 2 * 3, dtype=np.uint8).reshape(10, 2, 2, 3)
    src = ArrayFrames(frames, np.array([0, 4, 10]))
    assert src.episode_start(1) == 4
    np.testing.assert_array_equal(src.get(np.array([4, 5])), frames[4:6])
