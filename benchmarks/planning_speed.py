"""Planning's cost: ms per action chunk of the planning policy (wam.paradigms.planning) against the
number of candidates and imagination steps, as ratios to the action-only policy measured in the same run,
and each planner again with its imagination's K/V cache off (the clean groups recomputed at every Euler step).

    .venv/bin/python benchmarks/planning_speed.py [--candidates 1,4,16,64] [--sample_steps 4,10] [--repeats 5]

The family's default shapes (64 px frames -> (8, 8, 8) latents, patch 2, depth 4, one obs frame,
futures at +4/8/12/16, a 16-action chunk): a world model conditioned on the 16 actions, candidates
from the dataset statistics (the prior) or from an action-only proposal (10 steps, its own cost
included). One `act` at batch 1, fp32, 1 thread (as `wam eval`'s workers run it), calls interleaved,
medians; results appended to benchmarks/results/planning_speed.md.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from paradigm_speed import make_batch
from results_file import append, header
from wam.models.world_model import VideoWorldModel, WorldModelConfig
from wam.nn.tokenizer import FrameAutoencoder, TokenizerConfig
from wam.nn.transformer import BackboneConfig
from wam.paradigms import PolicyModelConfig, build_paradigm
from wam.paradigms.planning import Goals, PlanConfig, Planner
from wam.policy import Normalizer


def planners(depth: int, candidates: list[int], steps: list[int]) -> list[tuple[str, torch.nn.Module]]:
    """Action-only first (the baseline), then a planner per (proposal, candidates, steps)."""
    tok = FrameAutoencoder(TokenizerConfig(image_size=64, latent_channels=8))
    torch.manual_seed(0)
    action_only = build_paradigm("action_only", PolicyModelConfig(backbone=BackboneConfig(depth=depth)), tok)
    wm = VideoWorldModel(WorldModelConfig(backbone=BackboneConfig(depth=depth), action_chunk=16), tok).eval()
    units = Normalizer({"observation.state": {"mean": np.zeros(4), "std": np.ones(4)},
                        "action": {"min": -np.ones(4), "max": np.ones(4)}})
    goals = Goals(torch.zeros(0, 384), torch.zeros(0, 8, 8, 8), torch.zeros(0, 8, 8, 8))
    out: list[tuple[str, torch.nn.Module]] = [("action_only (10 steps)", action_only.eval())]
    for proposal in (None, action_only):
        for n in candidates:
            for s in steps:
                for cache in (True, False):
                    cfg = PlanConfig(candidates=n, sample_steps=s, chunk=16, future=wm.cfg.future, kv_cache=cache)
                    name = (f"planning, {'action-only proposal' if proposal else 'prior'}, N={n}, {s} steps"
                            + ("" if cache else ", K/V cache off"))
                    out.append((name, Planner(cfg, wm, units, goals, proposal, (torch.zeros(4), 0.5 * torch.ones(4)))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--candidates", default="1,4,16,64")
    parser.add_argument("--sample_steps", default="4,10")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    named = planners(args.depth, [int(n) for n in args.candidates.split(",")],
                     [int(s) for s in args.sample_steps.split(",")])
    batch = make_batch(PolicyModelConfig(), 1)
    batch["goal.latent"] = torch.randn(1, 8, 8, 8)
    times: list[list[float]] = [[] for _ in named]
    with torch.no_grad():
        for _, m in named:
            m.act(batch)  # warm-up
        for _ in range(args.repeats):
            for i, (_, m) in enumerate(named):
                start = time.perf_counter()
                m.act(batch, generator=torch.Generator().manual_seed(0))
                times[i].append(1000 * (time.perf_counter() - start))
    ms = [float(np.median(t)) for t in times]
    lines = [*header("planning_speed.py"), f"torch {torch.__version__}; batch 1, fp32, 1 thread, depth {args.depth}; "
             f"median of {args.repeats} interleaved calls; in brackets: x action-only, same run", "",
             "| policy | ms per chunk (x action-only) | K/V cache off: ms (x cached) |", "|---|---|---|"]
    lines.append(f"| {named[0][0]} | {ms[0]:.1f} (1.0x) | |")
    for i in range(1, len(named), 2):  # a planner with the cache, then the same without it
        lines.append(f"| {named[i][0]} | {ms[i]:.1f} ({ms[i] / ms[0]:.1f}x) | {ms[i + 1]:.1f} ({ms[i + 1] / ms[i]:.2f}x) |")
    append("planning_speed", "Planning: ms per chunk against candidates and imagination steps", lines)


if __name__ == "__main__":
    main()
