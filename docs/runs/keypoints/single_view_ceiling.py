"""Single-view ceiling (twelfth session): R^2 of the object and goal world positions regressed (ridge, quadratic) from
their exact corner2 pixel projections, held-out 20% of data/probe3_c2_128. One camera loses depth: what no pixel
reader of that camera alone can exceed (up to that regression)."""
import numpy as np
from wam.data.lerobot_format import LeRobotDataset
from wam.envs.target_masks import dataset_centres, ENV_STATE_KEY, TARGETS
from wam.data.tasks import episodes_by_task
from wam.data.frames import episode_starts
from wam.probe import r2, split_held_out, ridge_fit_predict
ds = LeRobotDataset("/work/scratch/data/probe3_c2_128")
c = dataset_centres(ds, "corner2", 128); starts = episode_starts(ds)
st = ds.read_columns([ENV_STATE_KEY])[ENV_STATE_KEY]
f = lambda p: np.concatenate([p, p ** 2, p[:, :1] * p[:, 1:]], 1) / 128
for task, eps in sorted(episodes_by_task(ds).items()):
    tr, te = split_held_out(eps, 0.2)
    rows = lambda es: np.concatenate([np.arange(starts[e] + 1, starts[e + 1], 8) for e in es])
    rtr, rte = rows(tr), rows(te)
    for k, name in ((1, "goal"), (0, "object")):
        y = st[:, TARGETS[name]]
        p = ridge_fit_predict(f(c[rtr, k]), y[rtr], f(c[rte, k]))
        print(task, name, "xyz R2 from true 2D pixel", round(r2(p, y[rte]), 3), "per-dim std", y[rte].std(0).round(3))
