"""Which per-task lift, fitted on a cell's own training episodes only (fourteenth session; chose the affine map on
task-standardised positions, alpha 1e-2, for `policy.keypoints.per_task`): affine vs quadratic, a ridge alpha sweep;
held-out xyz R^2 per task and target.

    python lift_choice.py RUN DATA     # -> lift_choice.log
"""
import json, sys
from pathlib import Path
import numpy as np, torch
from wam.data.frames import cached_frames, episode_starts
from wam.data.lerobot_format import LeRobotDataset
from wam.data.tasks import episodes_by_task
from wam.paradigms.keypoints import locate_all, world_positions
from wam.probe import r2
from wam.train import load_policy
torch.set_num_threads(1)
run, data = Path(sys.argv[1]), sys.argv[2]
policy, cfg = load_policy(run)
ds = LeRobotDataset(data)
key = cfg.data.image_key or ds.video_keys[0]
frames = cached_frames(ds, key, image_size=cfg.data.image_size, progress=False).frames
names = cfg.policy.keypoints.names()
found = locate_all(policy.keypoints, frames)
split = json.loads((run / "split.json").read_text())
world, mean, std = world_positions(ds, names, split["train"])
starts, val, train = episode_starts(ds), set(split["val"]), set(split["train"])
rows = lambda es: np.concatenate([np.arange(starts[e] + 1, starts[e + 1]) for e in es])
def fit(x, y, alpha):
    w = np.linalg.solve(x.T @ x + alpha * len(x) * np.eye(x.shape[1]), x.T @ y); return w
for task, eps in sorted(episodes_by_task(ds).items()):
    tr, te = rows([e for e in eps if e in train]), rows([e for e in eps if e in val])
    for k, name in enumerate(names):
        p_tr, p_te, y_tr, y_te = found[tr, k], found[te, k], world[tr, k], world[te, k]
        m, s = p_tr.mean(0), p_tr.std(0) + 1e-6
        z = lambda p: (p - m) / s
        aff = lambda p: np.concatenate([np.ones((len(p), 1)), z(p)], 1)
        quad = lambda p: np.concatenate([aff(p), z(p) ** 2, z(p)[:, :1] * z(p)[:, 1:]], 1)
        out = []
        for nm, f in (("aff", aff), ("quad", quad)):
            for a in (1e-4, 1e-2, 1e-1):
                ym, ys = y_tr.mean(0), y_tr.std(0) + 1e-6
                w = fit(f(p_tr), (y_tr - ym) / ys, a)
                out.append(f"{nm}{a:g} {r2(f(p_te) @ w * ys + ym, y_te):5.2f}")
        print(f"{task:24s} {name:6s} " + " | ".join(out), flush=True)
