"""How smooth is chunked control? Mean |a_t - a_{t-1}| at chunk boundaries vs inside chunks, and
success, for the same policy and scenes under synchronous open-loop chunks and under early requests
joined by `latest`, `blend` and `rtc` (real-time chunking), all through `wam serve` on loopback.

    .venv/bin/python benchmarks/chunk_boundaries.py [--tasks reach-v3 --demos 10 --train_steps 400 --episodes 4]

A small policy is trained here first (collected demos at 32 px, a depth-2 representation policy,
chunk 8; minutes on 2 cores): this measures how the *joining* behaves, not a good policy's success.
Chunked modes request the next chunk when `--threshold` actions remain and it lands `--delay`
steps later (simulated latency: deterministic, the same in every mode). Results are appended to
benchmarks/results/chunk_boundaries.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from results_file import append, header
from wam.config import apply_overrides
from wam.envs.collect import CollectConfig, collect
from wam.evaluate import EVAL_SEED, remote_policy, run_episode
from wam.serve.server import PolicyServer, ServeConfig, load_service
from wam.train import TrainConfig, train_policy


def train(args: argparse.Namespace) -> Path:
    root = Path(args.out)
    if not (root / "data/meta/info.json").exists():
        collect(CollectConfig(tasks=args.tasks, episodes=args.demos, out=str(root / "data"), image_size=32,
                              workers=1), progress_bar=False)
    if not (root / "policy/config.yaml").exists():
        cfg = apply_overrides(TrainConfig(), {
            "paradigm": "representation", "data.path": str(root / "data"), "data.image_size": 32,
            "tokenizer.steps": 200, "tokenizer.base_channels": 16, "tokenizer.latent_channels": 4,
            "policy.backbone.depth": 2, "policy.backbone.width": 128, "policy.chunk": args.chunk,
            "policy.future": (4, 8), "optim.steps": args.train_steps, "optim.batch_size": 16,
            "optim.val_every": args.train_steps, "optim.ckpt_every": args.train_steps, "text_encoder": "hash",
            "out": str(root / "policy")})
        train_policy(cfg, progress=False)
    return root / "policy"


def episodes(address: str, tasks: list[str], n: int, max_steps: int, **control) -> list[dict]:
    import wam.evaluate as ev

    client, cfg = remote_policy(address, **control)
    ev._WORKER.update(policy=client, cfg=cfg)
    out = [run_episode(t, EVAL_SEED + k, max_steps, False) for t in tasks for k in range(n)]
    client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp/wam_chunk_boundaries")
    parser.add_argument("--tasks", default="reach-v3")
    parser.add_argument("--demos", type=int, default=10)
    parser.add_argument("--train_steps", type=int, default=400)
    parser.add_argument("--chunk", type=int, default=8)
    parser.add_argument("--threshold", type=int, default=4)
    parser.add_argument("--delay", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--max_steps", type=int, default=120)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from wam.envs.rendering import configure_gl_backend

    configure_gl_backend()
    run = train(args)
    server = PolicyServer(load_service(ServeConfig(policy=str(run))), port=0).start()
    tasks = args.tasks.split(",")
    modes = {"sync (open loop, half a chunk)": {},
             **{m: {"threshold": args.threshold, "merge": m, "delay": args.delay} for m in ("latest", "blend", "rtc")}}
    rows = []
    try:
        for name, control in modes.items():
            res = episodes(server.address, tasks, args.episodes, args.max_steps, **control)
            at = np.mean([r["jump_boundary"] for r in res if r["jump_boundary"] is not None])
            inside = np.mean([r["jump_inside"] for r in res if r["jump_inside"] is not None])
            rows.append((name, at, inside, np.mean([r["success"] for r in res]), len(res)))
            print(rows[-1], flush=True)
    finally:
        server.stop()
    lines = [*header("chunk_boundaries.py"),
             f"policy: representation, depth 2, width 128, 32 px, chunk {args.chunk}, trained {args.train_steps} steps "
             f"on {args.demos} demos of {args.tasks}; chunked modes: request at {args.threshold} left, lands "
             f"{args.delay} steps later; {args.episodes} episodes a task, <= {args.max_steps} steps, same scenes",
             "", "| control | mean jump at boundaries | mean jump inside chunks | boundary / inside | success | episodes |",
             "|---|---|---|---|---|---|"]
    for name, at, inside, success, n in rows:
        lines.append(f"| {name} | {at:.4f} | {inside:.4f} | {at / inside:.2f} | {success:.2f} | {n} |")
    append("chunk_boundaries", "Chunk boundaries: action jumps with and without blending / RTC "
           "(benchmarks/chunk_boundaries.py)", lines)


if __name__ == "__main__":
    main()
