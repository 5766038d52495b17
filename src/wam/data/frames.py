"""Where training frames come from: a `FrameSource` maps frame rows to (n, H, W, 3) uint8 images.

Rows number the frames of all episodes back to back, in episode order (`episode_start(e)` is the
row of episode e's first frame). Three sources serve the same rows:

- `VideoFrames`: decodes from the mp4 files on every access (no memory, slowest);
- `ArrayFrames`: an array in memory (fastest, costs RAM);
- the decode-once cache, `cached_frames(...)`: all frames decoded one time into a uint8 file under
  `<dataset>/.wam_cache/` and memory-mapped, so DataLoader workers share it through the page cache.
  benchmarks/reader_throughput.py measures the three against each other.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from wam.data.files import sweep_dead_temporaries, temporary_tag, write_json_atomic
from wam.data.lerobot_format import LeRobotDataset
from wam.data.video import decode_video


class FrameSource(Protocol):
    def episode_start(self, episode: int) -> int: ...
    def get(self, rows: np.ndarray) -> np.ndarray: ...


def episode_starts(dataset: LeRobotDataset) -> np.ndarray:
    """(E+1,) frame row of each episode's first frame, episodes back to back; the last is the total."""
    lengths = [e.length for e in dataset.episodes]
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def frame_rows(dataset: LeRobotDataset, episodes: Sequence[int]) -> np.ndarray:
    """(n,) frame rows (as in the frame cache) of the given episodes, in their order."""
    starts = episode_starts(dataset)
    return np.concatenate([np.arange(starts[e], starts[e + 1]) for e in episodes]) if len(episodes) else \
        np.zeros(0, np.int64)


class ArrayFrames:
    """Frames held in an array (or a memory map) of shape (N, H, W, 3)."""

    def __init__(self, frames: np.ndarray, starts: np.ndarray):
        self.frames, self.starts = frames, starts

    def episode_start(self, episode: int) -> int:
        return int(self.starts[episode])

    def get(self, rows: np.ndarray) -> np.ndarray:
        return self.frames[rows]


class VideoFrames:
    """Frames decoded from the mp4 files at each access (seek, then decode the needed span)."""

    def __init__(self, dataset: LeRobotDataset, key: str):
        self.dataset, self.key = dataset, key
        self.starts = episode_starts(dataset)

    def episode_start(self, episode: int) -> int:
        return int(self.starts[episode])

    def get(self, rows: np.ndarray) -> np.ndarray:
        e = int(np.searchsorted(self.starts, rows.min(), side="right") - 1)
        first, last = int(rows.min() - self.starts[e]), int(rows.max() - self.starts[e])
        ep = self.dataset.episodes[e]
        t0 = ep.videos[self.key][2] + first / self.dataset.fps
        span = decode_video(self.dataset.video_file(self.key, ep), t0, last - first + 1, self.dataset.fps)
        return span[rows - self.starts[e] - first]


def resize_frames(frames: np.ndarray, size: int | None) -> np.ndarray:
    """(T, H, W, 3) uint8 resized to (T, size, size, 3) with an antialiased filter (no-op if None)."""
    if size is None or frames.shape[1:3] == (size, size):
        return frames
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BILINEAR)) for f in frames])


def cache_dir(dataset: LeRobotDataset) -> Path:
    here = dataset.root / ".wam_cache"
    try:
        here.mkdir(exist_ok=True)
        if os.access(here, os.W_OK):
            return here
    except OSError:
        pass
    digest = hashlib.sha1(str(dataset.root.resolve()).encode()).hexdigest()[:12]
    return Path(os.environ.get("WAM_CACHE", Path.home() / ".cache" / "wam")) / digest


def _decode_into(dataset: LeRobotDataset, key: str, image_size: int | None, starts: np.ndarray,
                 size: tuple[int, int], path: Path, progress: bool) -> None:
    """Every episode of `key` decoded into `path` (N, h, w, 3) uint8 via this process's own temporary file."""
    sweep_dead_temporaries(path.parent, "*.u8.*.tmp")  # a killed decode's file is as large as a cache
    tmp = path.with_name(f"{path.name}.{temporary_tag()}.tmp")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(int(starts[-1]), *size, 3))
        for e in tqdm(range(dataset.num_episodes), desc=f"decoding {key}", leave=False, disable=not progress):
            out[starts[e]:starts[e + 1]] = resize_frames(dataset.decode_frames(key, e), image_size)
        out.flush()
        del out
        os.replace(tmp, path)  # a reader's mapping keeps the old file: nothing it maps is ever truncated
    finally:
        tmp.unlink(missing_ok=True)


def cached_frames(dataset: LeRobotDataset, key: str, image_size: int | None = None,
                  in_memory: bool = False, progress: bool = True) -> ArrayFrames:
    """All frames of `key`, decoded once into a memory-mapped uint8 file and reused afterwards.

    The cache is keyed by the dataset's episodes (count, lengths) and the image size, so a dataset
    that grew (a resumed collect) is decoded again. Each process decodes into a file of its own and
    renames it into place when complete, then writes the stamp: an interrupted decode is redone rather
    than read half-filled, and a process that decodes never truncates the file another one has mapped
    (two runs side by side once killed one with SIGBUS that way). A temporary file left by a decode that was
    killed outright is deleted by the next decode once its process is gone.
    """
    starts = episode_starts(dataset)
    h, w, _ = dataset.feature(key)["shape"]
    h, w = (image_size, image_size) if image_size else (h, w)
    stamp = {"episodes": dataset.num_episodes, "frames": int(starts[-1]), "size": [h, w],
             "lengths": hashlib.sha1(np.diff(starts).tobytes()).hexdigest()}
    folder = cache_dir(dataset)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}_{h}x{w}.u8"
    stamp_path = path.with_suffix(".json")
    if not (stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp):
        stamp_path.unlink(missing_ok=True)
        _decode_into(dataset, key, image_size, starts, (h, w), path, progress)
        write_json_atomic(stamp, stamp_path)
    frames = np.load(path, mmap_mode="r")
    return ArrayFrames(np.array(frames) if in_memory else frames, starts)
