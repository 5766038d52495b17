"""Detector error vs the hand's distance to the target (held-out episodes of the 20-demo action_only_kp cell)."""
import json, numpy as np, torch
from wam.train import load_policy
from wam.data.lerobot_format import LeRobotDataset
from wam.data.frames import cached_frames, episode_starts
from wam.envs.target_masks import dataset_centres, ENV_STATE_KEY, TARGETS
from wam.paradigms.keypoints import locate_all
from wam.data.tasks import episodes_by_task
run = "runs/vp_kp_d20/cells/action_only_kp__d20__s0"
policy, cfg = load_policy(run)
ds = LeRobotDataset("data/mw5_c2_128_64")
fr = cached_frames(ds, "observation.images.corner2", image_size=64, progress=False).frames
val = json.load(open(f"{run}/split.json"))["val"]
starts = episode_starts(ds)
rows = np.concatenate([np.arange(starts[e], starts[e + 1]) for e in val])
c = dataset_centres(ds, "corner2", 64, ("hand", "object", "goal"))
px = (locate_all(policy.keypoints, fr[rows]) + 1) / 2 * 64
task_of = {e: t for t, es in episodes_by_task(ds).items() for e in es}
tasks = np.concatenate([[task_of[e]] * (starts[e + 1] - starts[e]) for e in val])
for k, name in ((0, "object"), (1, "goal")):
    err = np.linalg.norm(px[:, k] - c[rows, k + 1], axis=1)
    d = np.linalg.norm(c[rows, 0] - c[rows, k + 1], axis=1)
    for t in sorted(set(tasks)):
        m = (tasks == t) & np.isfinite(err)
        near, far = m & (d < 3), m & (d >= 6)
        print(f"{name:6s} {t:26s} err median {np.median(err[m]):.2f} p95 {np.quantile(err[m], .95):.2f} | hand<3px: n={near.sum():4d} median {np.median(err[near]) if near.any() else float('nan'):.2f} p90 {np.quantile(err[near], .9) if near.any() else float('nan'):.2f} | hand>=6px: median {np.median(err[far]):.2f} p90 {np.quantile(err[far], .9):.2f}")
