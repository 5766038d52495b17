"""Spread of the projected goal and object (px at 128) per task, data/probe3_c2_128."""
import numpy as np
from wam.data.lerobot_format import LeRobotDataset
from wam.envs.target_masks import dataset_centres
from wam.data.tasks import episodes_by_task
from wam.data.frames import episode_starts
ds = LeRobotDataset("/work/scratch/data/probe3_c2_128")
c = dataset_centres(ds, "corner2", 128); starts = episode_starts(ds)
for task, eps in sorted(episodes_by_task(ds).items()):
    rows = np.concatenate([np.arange(starts[e] + 1, starts[e + 1], 8) for e in eps])
    g = c[rows, 1]; o = c[rows, 0]
    print(task, len(eps), "goal std px", g.std(0).round(2), "range", np.ptp(g, 0).round(1), "obj std", o.std(0).round(2))
