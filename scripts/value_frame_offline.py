"""Issue 11 item 6 (Cosmos Policy's value frame), offline: does the value read off the denoised value frame
track the target on held-out demos, and what does best-of-N by it do to the action error?

Loads a `wam train` run made with `--policy.latent_frame.value_frame=true`, takes `--per_episode` evenly
spaced windows of each held-out episode, and prints: the Pearson correlation of the predicted value with
the target gamma^(actions left after the chunk) (`wam.paradigms.latent_frame.value_target`), the mean
absolute error against that of always predicting the held-out targets' mean (a ratio: < 1 = better than
the constant), and the held-out action MSE (normalised units) acting best-of-1 vs best-of-N, the same noise
seed for both.

    python scripts/value_frame_offline.py RUN [--per_episode=8] [--candidates=4]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from wam.data.frames import frame_rows
from wam.data.text import get_text_encoder
from wam.offline_eval import _inputs, anchors, chunk_error, run_folder
from wam.paradigms.latent_frame import value_target
from wam.pretrain import LatentCollate
from wam.train import load_policy, open_data, policy_windows


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("run")
    args.add_argument("--per_episode", type=int, default=8)
    args.add_argument("--candidates", type=int, default=4)
    args.add_argument("--batch_size", type=int, default=32)
    a = args.parse_args()
    torch.set_num_threads(1)
    policy, tcfg = load_policy(a.run)
    lf = policy.paradigm.cfg.latent_frame
    ds, frames, _, val_eps = open_data(tcfg, progress=False)
    windows = policy_windows(tcfg, ds, _inputs(policy, frames, frame_rows(ds, val_eps)), val_eps, True)
    cache = run_folder(a.run) / "text_cache.npz"
    text = get_text_encoder(tcfg.text_encoder, cache_path=cache if cache.exists() else None).encode(ds.tasks)
    collate = LatentCollate(text)
    picks = anchors(windows.lengths, a.per_episode)
    pred, target, mse = [], [], {1: [], a.candidates: []}
    for start in range(0, len(picks), a.batch_size):
        batch = collate([windows[int(i)] for i in picks[start:start + a.batch_size]])
        prep = policy.prepare(batch)
        for n in mse:
            lf.value_candidates = n
            chunk = policy.paradigm.act(prep, generator=torch.Generator().manual_seed(start))
            mse[n].append(chunk_error(chunk, prep["action"], prep["action_is_pad"]))
            if n == 1:
                pred.append(policy.paradigm.last_value.float().numpy())
        target.append(value_target(batch["frame_index"], batch["episode_length"], tcfg.policy.chunk, lf.gamma).numpy())
    p, t = np.concatenate(pred), np.concatenate(target)
    mae, base = np.abs(p - t).mean(), np.abs(t.mean() - t).mean()
    print(f"{len(t)} held-out windows of {len(val_eps)} episodes, gamma {lf.gamma}, targets in [{t.min():.3f}, "
          f"{t.max():.3f}] (mean {t.mean():.3f})")
    print(f"value: Pearson r {np.corrcoef(p, t)[0, 1]:.3f}; MAE {mae:.4f} vs {base:.4f} for the constant mean "
          f"(ratio {mae / base:.3f})")
    one, best = np.concatenate(mse[1]).mean(), np.concatenate(mse[a.candidates]).mean()
    print(f"action MSE: best-of-1 {one:.4f}, best-of-{a.candidates} {best:.4f} (ratio {best / one:.3f})")


if __name__ == "__main__":
    main()
