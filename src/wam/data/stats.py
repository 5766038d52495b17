"""Normalization statistics in LeRobot's layout: per feature `min`, `max`, `mean`, `std`, `count`.

Each episode's statistics are computed when it is written (stored as `stats/<feature>/<stat>`
columns of meta/episodes) and merged into meta/stats.json with `aggregate`, so the global file never
needs a second pass over the data. Images are summarised per channel in [0, 1], shape (3, 1, 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

STAT_NAMES = ("min", "max", "mean", "std", "count")
Stats = dict[str, np.ndarray]


def vector_stats(values: np.ndarray) -> Stats:
    """Statistics over the first axis of (T, D) values."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    return {
        "min": values.min(0),
        "max": values.max(0),
        "mean": values.mean(0),
        "std": values.std(0),
        "count": np.array([len(values)]),
    }


def image_stats(frames: np.ndarray, max_frames: int = 64) -> Stats:
    """Per-channel statistics of (T, H, W, 3) uint8 frames in [0, 1], each of shape (3, 1, 1).

    Uses an evenly spaced subset of at most `max_frames` frames (as LeRobot samples images);
    `count` is still the episode's number of frames so that episodes weigh by length.
    """
    idx = np.linspace(0, len(frames) - 1, min(len(frames), max_frames)).round().astype(int)
    pixels = frames[idx].reshape(-1, 3).astype(np.float64) / 255.0
    out = {k: v.reshape(3, 1, 1) for k, v in vector_stats(pixels).items() if k != "count"}
    out["count"] = np.array([len(frames)])
    return out


def aggregate(per_episode: Iterable[Mapping[str, np.ndarray]]) -> Stats:
    """Merge statistics of disjoint parts (exact for mean and std: pooled variance)."""
    parts = list(per_episode)
    if not parts:
        raise ValueError("no statistics to aggregate")
    counts = np.array([float(p["count"].reshape(-1)[0]) for p in parts])
    weights = (counts / counts.sum()).reshape(-1, *[1] * np.ndim(parts[0]["mean"]))
    means = np.stack([p["mean"] for p in parts])
    mean = (weights * means).sum(0)
    second = (weights * (np.stack([p["std"] for p in parts]) ** 2 + means**2)).sum(0)
    return {
        "min": np.min(np.stack([p["min"] for p in parts]), 0),
        "max": np.max(np.stack([p["max"] for p in parts]), 0),
        "mean": mean,
        "std": np.sqrt(np.maximum(second - mean**2, 0.0)),
        "count": np.array([int(counts.sum())]),
    }


def from_episode_row(row: Mapping[str, object], features: Mapping[str, dict]) -> dict[str, Stats]:
    """One episode's statistics from its meta/episodes row (`stats/<feature>/<stat>` columns), for
    the features in `features` that have them; video features have shape (3, 1, 1)."""
    out: dict[str, Stats] = {}
    for key, feat in features.items():
        if f"stats/{key}/mean" not in row:
            continue
        shape = (3, 1, 1) if feat["dtype"] == "video" else tuple(feat["shape"])
        out[key] = {s: np.asarray(row[f"stats/{key}/{s}"], dtype=np.float64).reshape((1,) if s == "count" else shape)
                    for s in STAT_NAMES}
    return out


def to_json(stats: Mapping[str, Stats]) -> dict:
    """Stats as nested lists for meta/stats.json."""
    return {key: {name: np.asarray(v).tolist() for name, v in s.items()} for key, s in stats.items()}


def from_json(raw: Mapping[str, Mapping[str, object]]) -> dict[str, Stats]:
    """meta/stats.json back to arrays (extra entries such as quantiles are kept)."""
    return {key: {name: np.asarray(v, dtype=np.float64) for name, v in s.items()} for key, s in raw.items()}
