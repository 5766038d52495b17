"""Where a Meta-World frame shows the task's object and goal: discs around their camera projections.

The recorded `observation.environment_state` (39 dims: hand 0:3, object 4:7, goal 36:39) gives the world
positions; the camera's pinhole model (`MetaWorldEnv.project`) maps them to pixels. `wam probe` measures the
tokenizer's reconstruction inside these discs, `wam imagine-eval` the world model's imagined future.

    px = projections("push-v3", "corner2", 64, state[:, TARGETS["object"]])   # (N, 2) column, row
    mask = disc_mask(px, 64, 0.08)                                            # (N, 1, 64, 64) bool
"""

from __future__ import annotations

import numpy as np
import torch

ENV_STATE_KEY = "observation.environment_state"
TARGETS: dict[str, slice] = {"hand": slice(0, 3), "object": slice(4, 7), "goal": slice(36, 39)}


def disc_mask(centres: np.ndarray, size: int, radius: float) -> torch.Tensor:
    """(N, 2) pixel centres (column, row) -> (N, 1, size, size) bool discs of radius*size pixels."""
    yy, xx = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    c = torch.from_numpy(np.asarray(centres)).float()
    d2 = (xx[None] - c[:, 0, None, None]) ** 2 + (yy[None] - c[:, 1, None, None]) ** 2
    return (d2 <= (radius * size) ** 2)[:, None]


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
