"""Training windows over a LeRobot dataset, declared by frame offsets.

A `WindowSpec` says what one training sample holds, relative to its anchor frame t:

    obs      frames (and proprio state) at t + o for o in `obs`       e.g. (-1, 0)
    future   frames at t + o for o in `future` (a stride)              e.g. (4, 8, 12, 16)
    action   the action chunk at t + o for o in `action`              e.g. 0 .. Ta-1; () = action-free

Offsets past an episode's edge repeat the edge frame and are flagged in `*_is_pad`. A spec with
no action offsets never reads the action column (action-free video, for pretraining). Episodes
named in `actionless` keep their frames and states, but their actions are treated as missing:
`action` all zeros, `action_is_pad` all True (tasks learned from video alone). Episodes named in `labels`
serve the actions given there (one row per frame, e.g. inferred from their video: wam.action_labels)
instead of their recorded ones.

One sample, as returned by `WindowDataset[i]` (T* = number of offsets, images channel-first):

    obs.image (To, 3, H, W) uint8      obs.state (To, Ds) float32     obs_is_pad (To,) bool
    future.image (Tf, 3, H, W) uint8   future_is_pad (Tf,) bool      future.state (Tf, Ds) float32 (with state)
    obs.aux (To, De) float32 (with `aux_key`: that column at the obs frames, e.g. the environment state)
    obs.<name> (To, ...) (each array of `derived`, one row per dataset frame, e.g. keypoints found in the frames)
    action (Ta, Da) float32            action_is_pad (Ta,) bool
    task str, task_index, episode_index, frame_index, episode_length int64 (its episode's frames)

Frames come from a `FrameSource`: decoded from the mp4 files on each access, from a uint8 cache
decoded once to disk (the default: see `frames.py`), or from an array in memory.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from wam.data.frames import FrameSource, cached_frames
from wam.data.lerobot_format import LeRobotDataset
from wam.errors import ConfigError, DatasetError

STATE_KEY = "observation.state"
ACTION_KEY = "action"


@dataclass(frozen=True)
class WindowSpec:
    """Which frames, states and actions a sample holds, as offsets from its anchor frame."""

    obs: tuple[int, ...] = (0,)
    future: tuple[int, ...] = ()
    action: tuple[int, ...] = ()
    state: bool = True
    image_key: str | None = None  # None: the dataset's first video feature
    aux_key: str | None = None  # a column read at the obs frames as `obs.aux` (auxiliary targets, never inputs)

    @property
    def action_free(self) -> bool:
        return not self.action

    def check(self) -> None:
        """Refuse offsets that make no sense, with a message saying which."""
        for name in ("obs", "future", "action"):
            offsets = getattr(self, name)
            if any(not isinstance(o, (int, np.integer)) or isinstance(o, bool) for o in offsets):
                raise ConfigError(f"{name} offsets must be integers (frames), got {offsets}")
            if list(offsets) != sorted(set(offsets)):
                raise ConfigError(f"{name} offsets must be strictly increasing, got {offsets}")
        if not self.obs:
            raise ConfigError("a window needs at least one obs offset (0 is the current frame)")
        if max(self.obs) > 0:
            raise ConfigError(f"obs offsets must be <= 0 (past or current frame), got {self.obs}")
        if self.future and min(self.future) <= 0:
            raise ConfigError(f"future offsets must be > 0, got {self.future}")

    def largest_offset(self) -> int:
        return max(abs(o) for o in (*self.obs, *self.future, *self.action))


def strided(count: int, stride: int, start: int | None = None) -> tuple[int, ...]:
    """`count` offsets `stride` apart, from `start` (default: `stride`): strided(4, 4) = (4, 8, 12, 16)."""
    first = stride if start is None else start
    return tuple(first + i * stride for i in range(count))


class WindowDataset(Dataset):
    """A map-style torch dataset of windows; one sample per frame of the chosen episodes."""

    def __init__(self, dataset: LeRobotDataset, spec: WindowSpec, episodes: Sequence[int] | None = None,
                 frames: FrameSource | None = None, actionless: Collection[int] = (),
                 derived: Mapping[str, np.ndarray] | None = None, labels: Mapping[int, np.ndarray] | None = None):
        spec.check()
        self.dataset, self.spec = dataset, spec
        self.image_key = spec.image_key or self._default_image_key()
        dataset.feature(self.image_key)
        self.episode_ids = list(range(dataset.num_episodes)) if episodes is None else list(episodes)
        if not self.episode_ids:
            raise ConfigError("a window dataset needs at least one episode")
        bad = [e for e in self.episode_ids if not 0 <= e < dataset.num_episodes]
        if bad:
            raise ConfigError(f"episode {bad[0]} does not exist (the dataset has {dataset.num_episodes})")
        lengths = np.array([dataset.episodes[e].length for e in self.episode_ids])
        if spec.largest_offset() >= lengths.max():
            raise ConfigError(
                f"offset {spec.largest_offset()} cannot be served: the longest episode has {lengths.max()} "
                "frames, so every window would be padding"
            )
        self.lengths = lengths
        self.actionless = np.isin(self.episode_ids, list(actionless))  # per position in episode_ids
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])  # row of each episode's frame 0
        self.labels = dict(labels or {})  # episode -> (its frames, Da) actions served instead of the recorded ones
        self.sample_episode = np.repeat(np.arange(len(lengths)), lengths)
        self.sample_frame = np.concatenate([np.arange(n) for n in lengths])
        self.columns = self._read_columns()
        self.frames = frames or cached_frames(dataset, self.image_key)
        self.frame_rows = np.array([self.frames.episode_start(e) for e in self.episode_ids])
        self.derived = dict(derived or {})  # name -> (dataset frames, ...), read at the obs frames' dataset rows
        short = [k for k, v in self.derived.items() if len(v) != dataset.num_frames]
        if short:
            raise ConfigError(f"derived arrays need one row per dataset frame ({dataset.num_frames}): {short}")

    def _default_image_key(self) -> str:
        if not self.dataset.video_keys:
            raise DatasetError(f"{self.dataset.root}: the dataset has no video feature to read frames from")
        return self.dataset.video_keys[0]

    def _read_columns(self) -> dict[str, np.ndarray]:
        wanted = ["task_index"] + ([STATE_KEY] if self.spec.state else [])
        wanted += [] if self.spec.action_free else [ACTION_KEY]
        if self.spec.aux_key:
            if self.spec.aux_key not in self.dataset.features:
                raise DatasetError(f"{self.dataset.root}: no {self.spec.aux_key} column to read auxiliary targets "
                                   f"from (policy.aux.targets); its features: {', '.join(self.dataset.features)}")
            wanted.append(self.spec.aux_key)
        cols = self.dataset.read_columns(wanted, self.episode_ids)  # never `action` when action-free
        if ACTION_KEY in cols:  # the actions of actionless episodes never leave this class
            cols[ACTION_KEY][np.repeat(self.actionless, self.lengths)] = 0
            self._label(cols[ACTION_KEY])
        return {k: (v.astype(np.float32) if v.dtype.kind == "f" else v) for k, v in cols.items()}

    def _label(self, actions: np.ndarray) -> None:
        """Write `labels`' actions over their episodes' rows of `actions` (this dataset's episodes, in order)."""
        where = {e: p for p, e in enumerate(self.episode_ids)}
        for e, given in self.labels.items():
            if e not in where:
                continue
            p = where[e]
            if given.shape != (self.lengths[p], actions.shape[1]):
                raise DatasetError(f"episode {e}: {given.shape} actions given for its {self.lengths[p]} frames of "
                                   f"{actions.shape[1]} action dimensions")
            actions[self.starts[p]:self.starts[p] + self.lengths[p]] = given

    def __len__(self) -> int:
        return int(self.lengths.sum())

    def _gather(self, i: int, offsets: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Episode-local frame positions for `offsets` (clamped to the episode) and their pad mask."""
        e, t = self.sample_episode[i], self.sample_frame[i]
        raw = t + np.asarray(offsets, dtype=np.int64)
        return np.clip(raw, 0, self.lengths[e] - 1), (raw < 0) | (raw >= self.lengths[e])

    def _images(self, i: int, positions: np.ndarray) -> torch.Tensor:
        rows = self.frame_rows[self.sample_episode[i]] + positions
        return torch.from_numpy(np.ascontiguousarray(self.frames.get(rows).transpose(0, 3, 1, 2)))

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        e = self.sample_episode[i]
        base = self.starts[e]
        pos, pad = self._gather(i, self.spec.obs)
        sample: dict = {"obs.image": self._images(i, pos), "obs_is_pad": torch.from_numpy(pad)}
        if self.spec.state:
            sample["obs.state"] = torch.from_numpy(self.columns[STATE_KEY][base + pos])
        if self.spec.aux_key:
            sample["obs.aux"] = torch.from_numpy(self.columns[self.spec.aux_key][base + pos])
        for name, rows in self.derived.items():
            sample[f"obs.{name}"] = torch.from_numpy(np.ascontiguousarray(rows[self.frame_rows[e] + pos]))
        if self.spec.future:
            pos, pad = self._gather(i, self.spec.future)
            sample["future.image"], sample["future_is_pad"] = self._images(i, pos), torch.from_numpy(pad)
            if self.spec.state:  # proprio at the future offsets (latent_frame's state frames predict it)
                sample["future.state"] = torch.from_numpy(self.columns[STATE_KEY][base + pos])
        if not self.spec.action_free:
            pos, pad = self._gather(i, self.spec.action)
            sample["action"] = torch.from_numpy(self.columns[ACTION_KEY][base + pos])
            sample["action_is_pad"] = torch.from_numpy(pad | self.actionless[e])
        task_index = int(self.columns["task_index"][base + self.sample_frame[i]])
        sample.update(task=self.dataset.tasks[task_index], task_index=task_index,
                      episode_index=self.episode_ids[e], frame_index=int(self.sample_frame[i]),
                      episode_length=int(self.lengths[e]))
        return sample


def with_labelled_share(windows: WindowDataset, share: float) -> tuple[Dataset, float]:
    """`windows` with the labelled ones (episodes not `actionless`) repeated a whole number of times so they
    make about `share` of the whole (0: as they are), and the share they make. One index list: the trainer's
    sampler (exact resume included) is unchanged."""
    labelled = ~windows.actionless[windows.sample_episode]  # (N,) per window
    n_lab, n_rest = int(labelled.sum()), int((~labelled).sum())
    if not share or not n_lab or not n_rest:
        return windows, n_lab / len(windows)
    repeat = max(1, round(share * n_rest / ((1 - share) * n_lab)))
    index = np.concatenate([np.tile(np.flatnonzero(labelled), repeat), np.flatnonzero(~labelled)])
    return Subset(windows, index.tolist()), repeat * n_lab / len(index)


def collate_windows(samples: list[dict]) -> dict:
    """Batch samples: tensors stacked through numpy, strings as lists, ints as int64 tensors.

    Measured: torch 2.13's CPU `torch.stack` (what `default_collate` uses) takes ~250 ms for 32
    uint8 windows of 4 frames at 96 px, `np.stack` ~0.2 ms (benchmarks/reader_throughput.py).
    """
    batch: dict = {}
    for key, first in samples[0].items():
        values = [s[key] for s in samples]
        if isinstance(first, torch.Tensor):
            batch[key] = torch.from_numpy(np.stack([v.numpy() for v in values]))
        elif isinstance(first, (int, np.integer)):
            batch[key] = torch.tensor(values, dtype=torch.int64)
        else:
            batch[key] = values
    return batch


def make_loader(windows: WindowDataset, batch_size: int, shuffle: bool = True, num_workers: int = 0,
                seed: int = 0, drop_last: bool = True) -> DataLoader:
    """A DataLoader over windows, reproducible through `seed` (workers share the frame cache)."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(windows, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                      collate_fn=collate_windows, generator=generator, drop_last=drop_last,
                      persistent_workers=num_workers > 0)
