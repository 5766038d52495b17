"""Collection throughput: frames/s of `wam collect` with 1 and 2 worker processes, in one run.

    .venv/bin/python benchmarks/collect_throughput.py [--tasks mt10] [--episodes 3] [--image_size 96]

Both runs collect the same demos (same tasks, seeds and settings) into fresh folders under
outputs/bench/; the ratio is 2 workers over 1. Results are appended to
benchmarks/results/collect_throughput.md. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from results_file import append, header
from wam.envs.collect import CollectConfig, collect


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", default="mt10")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--image_size", type=int, default=96)
    parser.add_argument("--camera", default="corner4")
    args = parser.parse_args()
    reports = {}
    for workers in (1, 2):
        out = Path(f"outputs/bench/collect_w{workers}")
        shutil.rmtree(out, ignore_errors=True)
        cfg = CollectConfig(tasks=args.tasks, episodes=args.episodes, out=str(out), camera=args.camera,
                            image_size=args.image_size, workers=workers)
        reports[workers] = collect(cfg, progress_bar=False)
        print(reports[workers].table())
    one, two = reports[1], reports[2]
    append("collect_throughput", "Collection throughput (benchmarks/collect_throughput.py)", [
        *header("collect_throughput.py"),
        f"{args.tasks} x {args.episodes} demos, {args.camera} {args.image_size} px, {one.frames} frames each run",
        "", "| workers | seconds | frames/s | ratio to 1 worker |", "|---|---|---|---|",
        f"| 1 | {one.seconds:.1f} | {one.fps:.0f} | 1.00 |",
        f"| 2 | {two.seconds:.1f} | {two.fps:.0f} | {two.fps / one.fps:.2f} |",
    ])


if __name__ == "__main__":
    main()
