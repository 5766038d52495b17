"""Where a Meta-World frame shows the task's object and goal: discs around their camera projections.

The recorded `observation.environment_state` (39 dims: hand 0:3, object 4:7, goal 36:39) gives the world
positions; the camera's pinhole model (`MetaWorldEnv.project`) maps them to pixels. `wam probe` measures the
tokenizer's reconstruction inside these discs, `wam imagine-eval` the world model's imagined future.

    px = projections("push-v3", "corner2", 64, state[:, TARGETS["object"]])   # (N, 2) column, row
    mask = disc_mask(px, 64, 0.08)                                            # (N, 1, 64, 64) bool
    centres = dataset_centres(LeRobotDataset("data/mw5"), "corner2", 64)     # (N, 2, 2): every frame's object, goal

`dataset_centres` is what a tokenizer's `target_weight` reads (weighting its loss inside these discs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from wam.errors import ConfigError
from wam.nn.image_metrics import discs

if TYPE_CHECKING:
    from wam.data.lerobot_format import LeRobotDataset

ENV_STATE_KEY = "observation.environment_state"
TARGETS: dict[str, slice] = {"hand": slice(0, 3), "object": slice(4, 7), "goal": slice(36, 39)}


def disc_mask(centres: np.ndarray, size: int, radius: float) -> torch.Tensor:
    """(N, 2) pixel centres (column, row) -> (N, 1, size, size) bool discs of radius*size pixels."""
    return discs(torch.from_numpy(np.asarray(centres))[:, None], size, radius)


def projections(task: str, camera: str, size: int, points: np.ndarray) -> np.ndarray:  # (N, 3) -> (N, 2)
    """Pixel positions (N, 2) of world points (N, 3) in `camera`'s frames of `task` (one env, then closed)."""
    from wam.envs.metaworld import MetaWorldEnv

    env = MetaWorldEnv(task, camera=camera, image_size=size)
    try:
        env.reset(seed=0)
        return env.project(points)
    finally:
        env.close()


def camera_of(image_key: str) -> str:
    """The camera a dataset's video feature was recorded with: `observation.images.corner2` -> `corner2`."""
    return image_key.rsplit(".", 1)[-1]


def require_target_state(ds: LeRobotDataset) -> dict[str, list[int]]:
    """Each task's episodes, when the dataset holds what the object and goal discs need (the recorded Meta-World
    state, v3 task names); else one line (ConfigError)."""
    from wam.data.tasks import episodes_by_task

    if ENV_STATE_KEY not in ds.info["features"]:
        raise ConfigError(f"{ds.root}: no '{ENV_STATE_KEY}' feature: the object and goal discs need the recorded "
                          f"Meta-World state (data from `wam collect`)")
    by_task = episodes_by_task(ds)
    other = sorted(t for t in by_task if not t.endswith("-v3"))
    if other:
        raise ConfigError(f"{ds.root}: episodes of {other[:3]} are not Meta-World v3 tasks; the object and goal "
                          f"discs need the task's camera model")
    return by_task


def dataset_centres(ds: LeRobotDataset, camera: str, size: int,
                    targets: tuple[str, ...] = ("object", "goal")) -> np.ndarray:  # (N, K, 2)
    """Every frame's pixel centres (column, row) of `targets` in `camera`'s `size` px frames, float32 (N, K, 2),
    from the recorded environment state and each episode's Meta-World task. An episode's first frame gets NaN
    for the goal (Meta-World renders the marker at the previous episode's goal until the first step): a NaN
    centre makes an empty disc. Datasets without the state or with other tasks are refused with one line."""
    from wam.data.frames import episode_starts, frame_rows

    by_task = require_target_state(ds)
    state = ds.read_columns([ENV_STATE_KEY])[ENV_STATE_KEY]  # (N, 39)
    starts = episode_starts(ds)
    out = np.full((len(state), len(targets), 2), np.nan, dtype=np.float32)
    for task, episodes in by_task.items():
        rows = frame_rows(ds, episodes)
        points = np.stack([state[rows][:, TARGETS[name]] for name in targets], 1)  # (n, K, 3)
        out[rows] = projections(task, camera, size, points.reshape(-1, 3)).reshape(len(rows), len(targets), 2)
    if "goal" in targets:
        out[starts[:-1], targets.index("goal")] = np.nan
    return out
