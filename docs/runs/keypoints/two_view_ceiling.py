"""Two-view ceiling (sixteenth session): R^2 of the goal and object world positions regressed (ridge, quadratic in
each view's pixels) from their exact projections in corner2 alone, and in corner2 plus a second fixed camera,
held-out 20% of the mw5 episodes. single_view_ceiling.py's measurement, with the second view's pixels added: how
much of the depth a second camera gives back to any pixel reader (up to that regression)."""
import sys

import numpy as np

from wam.data.frames import episode_starts
from wam.data.lerobot_format import LeRobotDataset
from wam.data.tasks import episodes_by_task
from wam.envs.target_masks import ENV_STATE_KEY, TARGETS, dataset_centres
from wam.probe import r2, ridge_fit_predict, split_held_out

ds = LeRobotDataset(sys.argv[1] if len(sys.argv) > 1 else "/work/scratch/data/mw5_c2_128_64")
SIZE, starts = 128, episode_starts(ds)
state = ds.read_columns([ENV_STATE_KEY])[ENV_STATE_KEY]
views = {cam: dataset_centres(ds, cam, SIZE) for cam in ("corner2", "corner", "corner3", "corner4", "topview")}


def quad(p):  # (N, 2) pixels -> (N, 5) features of one view
    return np.concatenate([p, p ** 2, p[:, :1] * p[:, 1:]], 1) / SIZE


for task, eps in sorted(episodes_by_task(ds).items()):
    tr, te = split_held_out(eps, 0.2)
    rows = lambda es: np.concatenate([np.arange(starts[e] + 1, starts[e + 1], 4) for e in es])  # noqa: E731
    rtr, rte = rows(tr), rows(te)
    for k, name in ((1, "goal"), (0, "object")):
        y = state[:, TARGETS[name]]
        if y[rte].std(0).max() < 1e-3:
            continue
        scores = []
        for cam in views:
            pair = ("corner2",) if cam == "corner2" else ("corner2", cam)
            x = np.concatenate([quad(views[c][:, k]) for c in pair], 1)  # (N, 5 per view)
            ok = np.isfinite(x).all(1)
            a, b = rtr[ok[rtr]], rte[ok[rte]]
            scores.append(f"{'+'.join(pair)} {r2(ridge_fit_predict(x[a], y[a], x[b]), y[b]):.3f}")
        print(f"{task} {name}: " + ", ".join(scores), flush=True)
