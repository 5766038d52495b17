"""Shared fixtures: small synthetic LeRobot datasets written with wam's own writer."""

from __future__ import annotations

import os
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from wam.data.writer import LeRobotWriter
from wam.envs.rendering import configure_gl_backend
from wam.errors import WamError

try:  # as wam's commands do, before anything imports mujoco (a test module importing it first made MuJoCo bind
    configure_gl_backend()  # its GL context before MUJOCO_GL was set, and the first env test warned about it)
except WamError:  # no offscreen GL here: the rendering tests say so themselves
    pass

IMAGE_KEY = "observation.images.cam"
FEATURES = {
    IMAGE_KEY: {"dtype": "video", "shape": [32, 32, 3], "names": ["height", "width", "channels"]},
    "observation.state": {"dtype": "float32", "shape": [4], "names": None},
    "action": {"dtype": "float32", "shape": [4], "names": None},
}


@pytest.fixture(autouse=True, scope="session")
def _wam_cache(tmp_path_factory):
    """`--optim.precision=auto` measures the CPU once and caches it: in a temporary folder for tests."""
    os.environ.setdefault("WAM_CACHE_DIR", str(tmp_path_factory.mktemp("wam_cache")))


def moving_square(length: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """(T, size, size, 3) uint8: a bright square moving over a smooth background (codec friendly)."""
    rng = np.random.default_rng(seed)
    color = rng.integers(80, 255, 3)
    yy, xx = np.mgrid[:size, :size]
    frames = np.empty((length, size, size, 3), np.uint8)
    for t in range(length):
        frame = np.stack([(xx * 4 + t) % 256, (yy * 4) % 256, np.full_like(xx, 60)], -1).astype(np.uint8)
        x = (3 * t) % (size - 8)
        frame[8:16, x:x + 8] = color
        frames[t] = frame
    return frames


def episode_arrays(length: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "observation.state": rng.normal(size=(length, 4)).astype(np.float32),
        "action": rng.uniform(-1, 1, size=(length, 4)).astype(np.float32),
    }


def write_dataset(root: Path, lengths=(20, 25, 30), tasks=("open the drawer", "push the puck"),
                  env_tasks: tuple[str, ...] | None = None) -> dict:
    """Write a dataset; returns what was written, for comparison. Episode e's `env_task` is
    `env_tasks[e % len(tasks)]` when given (Meta-World names), else "task<e % len(tasks)>"."""
    writer = LeRobotWriter(root, fps=10, features=FEATURES)
    written = {"frames": [], "data": [], "tasks": []}
    for e, length in enumerate(lengths):
        frames, data, task = moving_square(length, seed=e), episode_arrays(length, e), tasks[e % len(tasks)]
        env_task = env_tasks[e % len(tasks)] if env_tasks else f"task{e % len(tasks)}"
        writer.add_episode(task, data, {IMAGE_KEY: frames}, extras={"env_task": env_task, "seed": e})
        written["frames"].append(frames)
        written["data"].append(data)
        written["tasks"].append(task)
    return written


def unseal(root: Path) -> None:
    """Make a dataset look written elsewhere (or by an older wam): no checksums, so hand edits are read."""
    info = json.loads((root / "meta/info.json").read_text())
    info.pop("wam_integrity", None)
    (root / "meta/info.json").write_text(json.dumps(info))
    for path in (root / "meta/episodes").glob("chunk-*/file-*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.drop_columns([c for c in table.column_names if c.endswith("/sha256")]), path)


def drop_column(root: Path, column: str) -> None:
    """Remove a feature from every data file and from info.json, as a dataset made elsewhere without it
    (e.g. action-free video)."""
    for path in (root / "data").glob("chunk-*/file-*.parquet"):
        pq.write_table(pq.read_table(path).drop_columns([column]), path)
    unseal(root)
    info = json.loads((root / "meta/info.json").read_text())
    info["features"].pop(column)
    (root / "meta/info.json").write_text(json.dumps(info))


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> tuple[Path, dict]:
    root = tmp_path / "tiny"
    return root, write_dataset(root)
