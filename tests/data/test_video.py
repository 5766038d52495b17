"""Tests for wam.data.video: the same frames always encode to the same file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from tests.conftest import moving_square
from wam.data.video import decode_video, encode_video


def noisy_square(t: int = 40) -> np.ndarray:
    """(T, 32, 32, 3) uint8: conftest's moving square with pixel noise (libx264 without `mbtree=0` gave
    ~10 different files from 20 encodes of these, 4 from 20 of the square without noise)."""
    frames = moving_square(t).astype(int) + np.random.default_rng(0).integers(-6, 7, (t, 32, 32, 3))
    return np.clip(frames, 0, 255).astype(np.uint8)


def test_the_same_small_frames_encode_to_the_same_file(tmp_path: Path) -> None:
    frames = noisy_square()
    path = tmp_path / "v.mp4"
    digests = set()
    for _ in range(10):
        encode_video(frames, path, 10)
        digests.add(hashlib.sha1(path.read_bytes()).hexdigest())
        decode_video(path)  # a process that has decoded video is where libx264 varied most
    assert len(digests) == 1
    assert np.abs(decode_video(path).astype(int) - frames).mean() < 8
