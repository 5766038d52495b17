"""Training-step rate of the representation policy, monolithic vs MoT (copy), same process, 1 thread.

Run from the folder holding runs/vp/wm_pool_64d4: `OMP_NUM_THREADS=1 python mot_rate.py` (2026-12-03, idle 2-core
machine): step s: mono 1.479  mot 1.401  mot/mono 0.947; params 5,330,456 vs 15,062,552."""
import time, torch
torch.set_num_threads(1)
from wam.imagination import load_world_model
from wam.paradigms import build_paradigm
from wam.paradigms.policy_config import PolicyModelConfig
wm, cfg = load_world_model("runs/vp/wm_pool_64d4")
def make(mot):
    import dataclasses; bb = dataclasses.replace(cfg.model.backbone, mot=mot)
    pc = PolicyModelConfig(backbone=bb, patch=cfg.model.patch, state_dim=10)
    p = build_paradigm("representation", pc, wm.tokenizer)
    p.parts.load_world(wm.state_dict()); return p
B = 32
lat = wm.tokenizer.encode(torch.zeros(1, 3, 64, 64)).shape[1:]
g = torch.Generator().manual_seed(0)
b = {"obs.latent": torch.randn(B, 1, *lat), "obs.state": torch.randn(B, 1, 10), "future.latent": torch.randn(B, 4, *lat),
     "future_is_pad": torch.zeros(B, 4, dtype=torch.bool), "action": torch.rand(B, 16, 4) * 2 - 1,
     "action_is_pad": torch.zeros(B, 16, dtype=torch.bool), "text_emb": torch.randn(B, 384)}
ps = {m: make(m) for m in (False, True)}
opts = {m: torch.optim.AdamW(p.parameters(), 1e-4) for m, p in ps.items()}
times = {False: [], True: []}
for r in range(8):
    for m, p in ps.items():
        t = time.perf_counter(); loss, _ = p.loss(b); opts[m].zero_grad(); loss.backward(); opts[m].step()
        if r >= 2: times[m].append(time.perf_counter() - t)
med = {m: sorted(v)[len(v)//2] for m, v in times.items()}
print("step s: mono %.3f  mot %.3f  mot/mono %.3f" % (med[False], med[True], med[True] / med[False]))
print("params mono %d mot %d" % tuple(sum(q.numel() for q in ps[m].parameters()) for m in (False, True)))
