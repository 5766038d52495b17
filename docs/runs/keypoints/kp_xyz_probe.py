"""The issue's probe, with a trained cell's frozen keypoint detector as the representation (thirteenth session).

    python kp_xyz_probe.py RUN DATA      # RUN: a `wam train` folder with policy.keypoints; DATA: its dataset

From ONE frame: the detector's (column, row) of the object and the goal, then a per-task quadratic ridge to the
recorded xyz, fitted on the task's training episodes (every non-held-out one, not only the cell's labelled
demos), scored on the cell's held-out episodes (R^2 pooled over x, y, z: wam.probe.r2). Beside it, the same
ridge from the exact projections (the single-view ceiling of single_view_ceiling.py) and the shipped lift
(one map for all tasks, fitted on the cell's own training frames). Each episode's first frame is left out.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

from wam.data.frames import cached_frames, episode_starts
from wam.data.lerobot_format import LeRobotDataset
from wam.data.tasks import episodes_by_task
from wam.envs.target_masks import camera_of, dataset_centres
from wam.paradigms.keypoints import as_state, locate_all, world_positions
from wam.probe import r2, ridge_fit_predict
from wam.train import load_policy

torch.set_num_threads(1)
run, data = Path(sys.argv[1]), sys.argv[2]
policy, cfg = load_policy(run)
ds = LeRobotDataset(data)
key = cfg.data.image_key or ds.video_keys[0]
frames = cached_frames(ds, key, image_size=cfg.data.image_size, progress=False).frames
names = cfg.policy.keypoints.names()
found = locate_all(policy.keypoints, frames)  # (N, K, 2) in [-1, 1]
split = json.loads((run / "split.json").read_text())
world, mean, std = world_positions(ds, names, split["train"])
lifted = as_state(policy.keypoints, found) * std + mean if cfg.policy.keypoints.world else None  # (N, K, 3)
exact = dataset_centres(ds, camera_of(key), frames.shape[1], tuple(names)) / frames.shape[1] * 2 - 1
starts, val = episode_starts(ds), set(split["val"])
feats = lambda p: np.concatenate([p, p ** 2, p[:, :1] * p[:, 1:]], 1)  # noqa: E731
rows = lambda es: np.concatenate([np.arange(starts[e] + 1, starts[e + 1]) for e in es])  # noqa: E731
print(f"{run}: detector trained on {len(split['train'])} episodes; ridge on every non-held-out episode")
for task, eps in sorted(episodes_by_task(ds).items()):
    tr, te = rows([e for e in eps if e not in val]), rows([e for e in eps if e in val])
    for k, name in enumerate(names):
        y = world[:, k]
        ok_tr, ok_te = np.isfinite(exact[tr, k]).all(1), np.isfinite(exact[te, k]).all(1)
        det = r2(ridge_fit_predict(feats(found[tr][ok_tr, k]), y[tr][ok_tr], feats(found[te][ok_te, k])), y[te][ok_te])
        ceil = r2(ridge_fit_predict(feats(exact[tr][ok_tr, k]), y[tr][ok_tr], feats(exact[te][ok_te, k])), y[te][ok_te])
        lift = None if lifted is None else r2(lifted[te][ok_te, k], y[te][ok_te])
        fmt = lambda v: "  -  " if v is None else f"{v:5.2f}"  # noqa: E731
        print(f"{task:26s} {name:6s} xyz R^2: detector + per-task ridge {fmt(det)} | exact projection + ridge "
              f"{fmt(ceil)} | shipped lift {fmt(lift)}   ({len(te)} held-out frames)")
