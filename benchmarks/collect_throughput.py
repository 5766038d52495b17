"""Collection throughput: frames/s of `wam collect` with 1 and 2 worker processes, in one run.

    .venv/bin/python benchmarks/collect_throughput.py [--tasks mw5] [--episodes 3] [--lp auto,cores]

Both runs collect the same demos (same tasks, seeds and settings) into fresh folders under
outputs/bench/; the ratio is 2 workers over 1. `--lp` lists the Mesa llvmpipe render-thread
settings tried (`LP_NUM_THREADS`): `auto` is wam's default (each worker's share of the cores,
wam.runs.threads), `cores` is llvmpipe's own default (one render thread per core in every worker),
a number is used as is. Besides wall-clock frames/s, each row gives the CPU seconds all processes
spent per frame and the cores they kept busy (CPU time / wall time): on a machine shared with other
work, the CPU time per frame is the number to compare, and a 1-worker run that already keeps every
core busy cannot get faster with 2. Results are appended to benchmarks/results/collect_throughput.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import time
from pathlib import Path

from results_file import append, header
from wam.envs.collect import CollectConfig, collect
from wam.runs.threads import cores


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the collect workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(args, workers: int, lp: str) -> dict:
    if lp == "auto":
        os.environ.pop("LP_NUM_THREADS", None)  # the workers set their share
    else:
        os.environ["LP_NUM_THREADS"] = str(cores()) if lp == "cores" else lp
    out = Path(f"outputs/bench/collect_w{workers}")
    shutil.rmtree(out, ignore_errors=True)
    cfg = CollectConfig(tasks=args.tasks, episodes=args.episodes, out=str(out), camera=args.camera,
                        image_size=args.image_size, workers=workers)
    cpu, wall = cpu_seconds(), time.perf_counter()
    report = collect(cfg, progress_bar=False)
    cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
    return {"frames": report.frames, "fps": report.frames / wall, "cpu_ms": 1000 * cpu / report.frames,
            "busy": cpu / wall, "seconds": wall}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", default="mw5")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--image_size", type=int, default=96)
    parser.add_argument("--camera", default="corner4")
    parser.add_argument("--lp", default="auto,cores", help="LP_NUM_THREADS settings: auto, cores or a number")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    lines = [*header("collect_throughput.py"),
             f"{args.tasks} x {args.episodes} demos, {args.camera} {args.image_size} px; {cores()} cores; "
             f"load average {load:.1f} at the start",
             "", "| LP_NUM_THREADS | workers | seconds | frames/s | ratio to 1 worker | CPU ms / frame | cores busy |",
             "|---|---|---|---|---|---|---|"]
    for lp in args.lp.split(","):
        one = None
        for workers in (1, 2):
            r = run(args, workers, lp)
            one = one or r
            lines.append(f"| {lp} | {workers} | {r['seconds']:.1f} | {r['fps']:.0f} | {r['fps'] / one['fps']:.2f} | "
                         f"{r['cpu_ms']:.1f} | {r['busy']:.2f} |")
            print(lines[-1], flush=True)
    append("collect_throughput", "Collection throughput (benchmarks/collect_throughput.py)", lines)


if __name__ == "__main__":
    main()
