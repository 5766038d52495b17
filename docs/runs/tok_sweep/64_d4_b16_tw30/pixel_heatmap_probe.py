"""Scratch check (eleventh session): a 3x3-conv heatmap on raw frames, cross-entropy on the goal pixel, the goal's
image position read back on held-out episodes of data/probe3_c2_128.
    python pixel_heatmap_probe.py SIZE TRAIN_EPISODES(0 = all) STEPS [argmax]
docs/world_model.md's R² 0.25-0.42 are `64 0 600` (soft-argmax); with `64 0 1500 argmax` it read worse."""
import sys, time, numpy as np, torch, torch.nn.functional as F
from wam.data.lerobot_format import LeRobotDataset
from wam.data.frames import cached_frames, episode_starts
from wam.envs.target_masks import dataset_centres, ENV_STATE_KEY, TARGETS
from wam.data.tasks import episodes_by_task
from wam.probe import r2, split_held_out, ridge_fit_predict
torch.manual_seed(0)
S = int(sys.argv[1]); ntrain = int(sys.argv[2]) if len(sys.argv) > 2 else 0
ds = LeRobotDataset("/work/scratch/data/probe3_c2_128")
fr = cached_frames(ds, "observation.images.corner2", image_size=S, progress=False).frames
st = ds.read_columns([ENV_STATE_KEY])[ENV_STATE_KEY]
c = dataset_centres(ds, "corner2", S)
starts = episode_starts(ds)
for task, eps in sorted(episodes_by_task(ds).items()):
    tr, te = split_held_out(eps, 0.2)
    tr = tr[:ntrain or None]
    rows = lambda es: np.concatenate([np.arange(starts[e] + 1, starts[e + 1], 8) for e in es])
    rtr, rte = rows(tr), rows(te)
    X = lambda r: (torch.from_numpy(np.asarray(fr[r])).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    xtr, xte = X(rtr), X(rte)
    tgt = lambda r: torch.from_numpy(np.clip(c[r, 1].astype(int), 0, S - 1)).long()
    ttr = tgt(rtr); idx = ttr[:, 1] * S + ttr[:, 0]
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.GELU(), torch.nn.Conv2d(16, 1, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    t = time.time()
    for step in range(int(sys.argv[3]) if len(sys.argv) > 3 else 600):
        i = torch.randint(0, len(xtr), (64,))
        loss = F.cross_entropy(net(xtr[i]).flatten(1), idx[i])
        opt.zero_grad(); loss.backward(); opt.step()
    grid = torch.stack(torch.meshgrid(torch.arange(S) + 0.5, torch.arange(S) + 0.5, indexing="xy"), -1).reshape(-1, 2)  # (S*S, 2) col,row
    def kp(x):
        with torch.no_grad():
            if len(sys.argv) > 4 and sys.argv[4] == "argmax":
                return torch.cat([grid[net(x[i:i+256]).flatten(1).argmax(-1)] for i in range(0, len(x), 256)]).numpy()
            return torch.cat([net(x[i:i+256]).flatten(1).softmax(-1) @ grid for i in range(0, len(x), 256)]).numpy()
    ptr, pte = kp(xtr), kp(xte)
    # world xyz from the keypoint: ridge on (col, row, col*row, col^2, row^2)
    f = lambda p: np.concatenate([p, p ** 2, p[:, :1] * p[:, 1:]], 1) / S
    xyz = ridge_fit_predict(f(ptr), st[rtr][:, TARGETS["goal"]], f(pte))
    print(S, task, "train goals", len(tr), "R2 goal px", round(r2(pte, c[rte, 1]), 3), "goal xyz", round(r2(xyz, st[rte][:, TARGETS["goal"]]), 3), f"{time.time()-t:.0f}s", flush=True)
