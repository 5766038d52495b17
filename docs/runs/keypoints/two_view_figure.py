"""docs/media/two_view_keypoints.png (sixteenth session): held-out frames of reach, push and pick-place seen by corner2
and corner at 64 px, with the targets' exact projections (circles) and where a trained two-view detector
(`policy.keypoints.views=corner`) finds them (crosses).

    python two_view_figure.py runs/vp_kpt_d20motf2v/cells/<cell> data/mw5_c2c_128 ../../media/two_view_keypoints.png
"""
import json
import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from wam.data.frames import cached_frames, episode_starts  # noqa: E402
from wam.data.lerobot_format import LeRobotDataset  # noqa: E402
from wam.paradigms.keypoints import detector_inputs, locate_all  # noqa: E402
from wam.train import load_policy  # noqa: E402

run, data, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
policy, cfg = load_policy(run)
ds = LeRobotDataset(data)
size = cfg.data.image_size
main = cached_frames(ds, cfg.data.image_key, image_size=size).frames
frames, centres = detector_inputs(policy.keypoints.cfg, ds, main, cfg.data.image_key, size)  # (N, H, W, 6), (N, K, 4)
held, starts = json.loads((run / "split.json").read_text())["val"], episode_starts(ds)
tasks = ["reach-v3", "push-v3", "pick-place-v3"]
picks = [starts[next(e for e in held if ds.episodes[e].extras["env_task"] == t)] + 20 for t in tasks]
found = (locate_all(policy.keypoints, frames[picks]) + 1) / 2 * size  # (3, K, 4) px
names, views = policy.keypoints.cfg.names(), [cfg.data.image_key.split(".")[-1], *policy.keypoints.cfg.view_list()]
fig, axes = plt.subplots(len(views), len(tasks), figsize=(3 * len(tasks), 3 * len(views)))
colours = {"object": "tab:orange", "goal": "tab:cyan"}
for j, (task, row) in enumerate(zip(tasks, picks)):
    for v, view in enumerate(views):
        ax = axes[v, j]
        ax.imshow(frames[row][..., 3 * v:3 * v + 3], extent=(0, size, size, 0))
        for k, name in enumerate(names):
            true, got = centres[row, k, 2 * v:2 * v + 2], found[j, k, 2 * v:2 * v + 2]
            if np.isfinite(true).all():
                ax.scatter(*true, s=120, facecolors="none", edgecolors=colours[name], linewidths=1.5, label=f"{name} (true)")
            ax.scatter(*got, s=60, marker="x", c=colours[name], linewidths=1.5, label=f"{name} (found)")
        ax.set_title(f"{task}, {view}", fontsize=9)
        ax.axis("off")
axes[0, 0].legend(fontsize=7, loc="lower left")
fig.suptitle("Two cameras, one detector: exact projections (circles) and the detector's positions (crosses), held out",
             fontsize=9)
fig.tight_layout()
out.parent.mkdir(parents=True, exist_ok=True)
fig.savefig(out, dpi=110)
print(f"wrote {out}")
