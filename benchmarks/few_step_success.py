"""Success and ms per chunk vs flow sampling steps (1/2/4/10), same policy and scenes, through `wam serve`.

    .venv/bin/python benchmarks/few_step_success.py [--out /tmp/wam_cb2 --steps 1,2,4,10 --episodes 8]

Reuses (or trains) chunk_boundaries.py's small reach-v3 policy in `--out`; synchronous control
(`n_action_steps` of each chunk), the K/V cache on. A small policy and few episodes: the
intervals are wide, read the table as a smoke test of few-step sampling, not a result about WAMs.
Results are appended to benchmarks/results/few_step_success.md.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from chunk_boundaries import episodes, train
from results_file import append, header
from wam.evaluate import wilson
from wam.serve.server import PolicyServer, ServeConfig, load_service


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/wam_cb2")
    parser.add_argument("--tasks", default="reach-v3")
    parser.add_argument("--demos", type=int, default=20)
    parser.add_argument("--train_steps", type=int, default=2500)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--steps", default="1,2,4,10")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--max_steps", type=int, default=150)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from wam.envs.rendering import configure_gl_backend

    configure_gl_backend()
    run = train(args)
    rows = []
    for n in [int(s) for s in args.steps.split(",")]:
        server = PolicyServer(load_service(ServeConfig(policy=str(run), sample_steps=n)), port=0).start()
        try:
            res = episodes(server.address, args.tasks.split(","), args.episodes, args.max_steps)
        finally:
            server.stop()
        wins = sum(r["success"] for r in res)
        ms = float(np.median([m for r in res for m in r["chunk_ms"]]))
        rows.append((n, wins, len(res), ms))
        print(rows[-1], flush=True)
    base = next((r[3] for r in rows if r[0] == 10), rows[-1][3])
    lines = [*header("few_step_success.py"),
             f"policy: {run} (representation, depth 2, 32 px, chunk {args.chunk}, trained {args.train_steps} steps on "
             f"{args.demos} demos of {args.tasks}); synchronous control through the server; {args.episodes} episodes "
             f"a task, <= {args.max_steps} steps, same scenes (seeds 10000+)", "",
             "| sampling steps | success | 95% CI | episodes | ms per chunk (median, round trip) | x 10 steps |",
             "|---|---|---|---|---|---|"]
    for n, wins, total, ms in rows:
        lo, hi = wilson(wins, total)
        lines.append(f"| {n} | {wins / total:.2f} | [{lo:.2f}, {hi:.2f}] | {total} | {ms:.1f} | {ms / base:.2f} |")
    append("few_step_success", "Success vs sampling steps (benchmarks/few_step_success.py)", lines)


if __name__ == "__main__":
    main()
