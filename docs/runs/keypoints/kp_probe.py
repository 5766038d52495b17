"""Scratch probe (twelfth session): a goal keypoint read from raw frames of data/probe3_c2_128 (200 episodes a task,
80% train, held-out 20%); cross-entropy against a Gaussian (1 px) around the projected goal, soft-argmax in a 7x7
window around the peak. ARCH: c3 (one 3x3 conv, colour only), dil (dilated full-res stack), cf (fine + coarse:
the design wam.nn.keypoints.KeypointNet keeps). python kp_probe.py SIZE ARCH STEPS TASK|all"""
import sys, time, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from wam.data.lerobot_format import LeRobotDataset
from wam.data.frames import cached_frames, episode_starts
from wam.envs.target_masks import dataset_centres
from wam.data.tasks import episodes_by_task
from wam.probe import r2, split_held_out
torch.manual_seed(0)
S, arch, steps, only = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
ds = LeRobotDataset("/work/scratch/data/probe3_c2_128")
fr = cached_frames(ds, "observation.images.corner2", image_size=S, progress=False).frames
c = dataset_centres(ds, "corner2", S); starts = episode_starts(ds)
class CoarseFine(nn.Module):
    def __init__(self, fine=16, coarse=32, k=1):
        super().__init__()
        self.fine = nn.Sequential(nn.Conv2d(3, fine, 3, padding=1), nn.GELU(), nn.Conv2d(fine, fine, 3, padding=1), nn.GELU(), nn.Conv2d(fine, k, 1))
        self.coarse = nn.Sequential(nn.Conv2d(3, coarse, 4, stride=4), nn.GELU(),
            *[m for d in (1, 2, 4) for m in (nn.Conv2d(coarse, coarse, 3, padding=d, dilation=d), nn.GELU())], nn.Conv2d(coarse, k, 1))
    def forward(self, x):
        return self.fine(x) + F.interpolate(self.coarse(x), scale_factor=4, mode="nearest")
def net_for(arch):
    if arch == "c3":
        return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.GELU(), nn.Conv2d(16, 1, 1))
    if arch == "cf":
        return CoarseFine()
    ch = 32
    return nn.Sequential(nn.Conv2d(3, ch, 3, padding=1), nn.GELU(),
        *[m for d in (2, 4, 8) for m in (nn.Conv2d(ch, ch, 3, padding=d, dilation=d), nn.GELU())], nn.Conv2d(ch, 1, 1))
grid = torch.stack(torch.meshgrid(torch.arange(S) + 0.5, torch.arange(S) + 0.5, indexing="xy"), -1).reshape(-1, 2)
def gauss(t):  # (B, 2) col,row -> (B, S*S) target distribution
    d2 = ((grid[None] - t[:, None]) ** 2).sum(-1)
    return (-d2 / 2.0).softmax(-1)
def local_softargmax(logits, r=3):  # (B, S*S)
    am = logits.argmax(-1); p = grid[am]
    d = (grid[None] - p[:, None]).abs().amax(-1) <= r
    w = logits.masked_fill(~d, -1e9).softmax(-1)
    return w @ grid
for task, eps in sorted(episodes_by_task(ds).items()):
    if only != "all" and only not in task: continue
    tr, te = split_held_out(eps, 0.2)
    rows = lambda es: np.concatenate([np.arange(starts[e] + 1, starts[e + 1], 4) for e in es])
    rtr, rte = rows(tr), rows(te)
    X = lambda r: (torch.from_numpy(np.asarray(fr[r])).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    xtr, xte = X(rtr), X(rte)
    ttr = torch.from_numpy(c[rtr, 1]).float()
    ok = torch.isfinite(ttr).all(-1); xtr, ttr = xtr[ok], ttr[ok]
    net = net_for(arch); opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    t = time.time()
    for step in range(steps):
        i = torch.randint(0, len(xtr), (32,))
        loss = -(gauss(ttr[i]) * net(xtr[i]).flatten(1).log_softmax(-1)).sum(-1).mean()
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    with torch.no_grad():
        pte = torch.cat([local_softargmax(net(xte[i:i+128]).flatten(1)) for i in range(0, len(xte), 128)]).numpy()
    g = c[rte, 1]; m = np.isfinite(g).all(1)
    err = np.abs(pte[m] - g[m])
    print(S, arch, steps, task, "train eps", len(tr), "R2 goal px", round(r2(pte[m], g[m]), 3), "median err px", np.median(err, 0).round(2), "p90", np.quantile(err, 0.9, 0).round(2), f"{time.time()-t:.0f}s", flush=True)
