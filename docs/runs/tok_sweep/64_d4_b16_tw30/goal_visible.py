"""Scratch check (eleventh session): is the goal marker visible at 128 px? Colour distance of the pixels at the
projected goal from their surround, and a strip of crops (written to /tmp/goal_crops.png)."""
import numpy as np, PIL.Image as I
from wam.data.lerobot_format import LeRobotDataset
from wam.data.frames import cached_frames
from wam.envs.target_masks import dataset_centres
from wam.data.tasks import episodes_by_task
from wam.data.frames import episode_starts
ds = LeRobotDataset("/work/scratch/data/probe3_c2_128")
S = 128
fr = cached_frames(ds, "observation.images.corner2", image_size=S, progress=False).frames
c = dataset_centres(ds, "corner2", S)
starts = episode_starts(ds)
rows_out = []
for task, eps in sorted(episodes_by_task(ds).items()):
    rows = np.concatenate([np.arange(starts[e] + 1, starts[e + 1], 16) for e in eps])
    g = c[rows, 1]
    inside = (g[:, 0] >= 6) & (g[:, 0] < S - 6) & (g[:, 1] >= 6) & (g[:, 1] < S - 6)
    crops, sal = [], []
    for r, (x, y) in zip(rows[inside], g[inside]):
        x, y = int(x), int(y)
        crop = np.asarray(fr[r][y - 6:y + 7, x - 6:x + 7]).astype(float)
        crops.append(crop)
        med = np.median(crop.reshape(-1, 3), 0)
        centre = crop[5:8, 5:8].reshape(-1, 3)
        sal.append(np.abs(centre - med).sum(1).max())
    sal = np.array(sal)
    print(task, "frames", len(rows), "goal in frame", inside.mean().round(3), "centre-vs-median colour distance: median", np.median(sal).round(1), "frac > 60:", (sal > 60).mean().round(2))
    rows_out.append(np.concatenate([np.kron(crops[i], np.ones((6, 6, 1))) for i in range(0, 60, 6)], 1))
I.fromarray(np.concatenate(rows_out, 0).astype(np.uint8)).save("/tmp/goal_crops.png")
