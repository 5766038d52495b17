"""Which lift for two views (sixteenth session): fitted per task on a two-view cell's own training episodes, held-out
xyz R^2 per task and target, from the detector's positions and from the exact projections (what the detector would
give if it erred by nothing): affine on the four numbers (what `per_task` fits), quadratic per view, full quadratic.

    python two_view_lift_choice.py RUN DATA     # -> two_view_lift_choice.log
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

from wam.data.frames import cached_frames, episode_starts
from wam.data.lerobot_format import LeRobotDataset
from wam.data.tasks import episodes_by_task
from wam.paradigms.keypoints import detector_inputs, locate_all, world_positions
from wam.probe import r2
from wam.train import load_policy

torch.set_num_threads(1)
run, data = Path(sys.argv[1]), sys.argv[2]
policy, cfg = load_policy(run)
ds, size = LeRobotDataset(data), cfg.data.image_size
main = cached_frames(ds, cfg.data.image_key, image_size=size, progress=False).frames
frames, centres = detector_inputs(policy.keypoints.cfg, ds, main, cfg.data.image_key, size)  # (N, H, W, 6), (N, K, 4)
found = locate_all(policy.keypoints, frames)  # (N, K, 4) in [-1, 1]
exact = centres / size * 2 - 1
names = cfg.policy.keypoints.names()
split = json.loads((run / "split.json").read_text())
world, _, _ = world_positions(ds, names, split["train"])
starts, val, train = episode_starts(ds), set(split["val"]), set(split["train"])
rows = lambda es: np.concatenate([np.arange(starts[e] + 1, starts[e + 1]) for e in es])  # noqa: E731


def features(kind, z):
    ones = np.ones((len(z), 1))
    if kind == "affine":
        return np.concatenate([ones, z], 1)
    if kind == "quad/view":
        per = [np.stack([z[:, i], z[:, i + 1], z[:, i] ** 2, z[:, i + 1] ** 2, z[:, i] * z[:, i + 1]], 1) for i in (0, 2)]
        return np.concatenate([ones, *per], 1)
    pairs = [z[:, i:i + 1] * z[:, j:j + 1] for i in range(4) for j in range(i, 4)]
    return np.concatenate([ones, z, *pairs], 1)


def score(pos, tr, te, k, y, kind, alpha=1e-2):
    ok_tr, ok_te = np.isfinite(pos[tr, k]).all(1), np.isfinite(pos[te, k]).all(1)
    p_tr, p_te, y_tr, y_te = pos[tr, k][ok_tr], pos[te, k][ok_te], y[tr, k][ok_tr], y[te, k][ok_te]
    m, s = p_tr.mean(0), p_tr.std(0) + 1e-6
    x_tr, x_te = features(kind, (p_tr - m) / s), features(kind, (p_te - m) / s)
    ym, ys = y_tr.mean(0), y_tr.std(0) + 1e-6
    w = np.linalg.solve(x_tr.T @ x_tr + alpha * len(x_tr) * np.eye(x_tr.shape[1]), x_tr.T @ ((y_tr - ym) / ys))
    return r2(x_te @ w * ys + ym, y_te)


print(f"run {run}, {len(val)} held-out episodes; held-out xyz R^2 per task: detector positions | exact projections")
for task, eps in sorted(episodes_by_task(ds).items()):
    tr, te = rows([e for e in eps if e in train]), rows([e for e in eps if e in val])
    for k, name in enumerate(names):
        if world[te, k].std(0).max() < 1e-3:
            continue
        got = [f"{kind} {score(found, tr, te, k, world, kind):.3f}/{score(exact, tr, te, k, world, kind):.3f}"
               for kind in ("affine", "quad/view", "quad")]
        print(f"{task:24s} {name:6s} " + " | ".join(got), flush=True)
