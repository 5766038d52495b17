"""Reader throughput: training windows/s from the mp4 files vs. the decode-once cache vs. memory.

    .venv/bin/python benchmarks/reader_throughput.py [--dataset PATH] [--samples 2000]

Without --dataset it collects a small dataset first (mw5, 4 demos a task, 96 px) into
outputs/bench/reader_data. Every source serves the same windows (obs -1,0; future 4,8,12,16;
actions 0..15) in the same random order, in one process; ratios are against the in-memory array.
Results are appended to benchmarks/results/reader_throughput.md.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from wam.data.frames import VideoFrames, cached_frames
from wam.data.lerobot_format import LeRobotDataset
from wam.data.windows import WindowDataset, WindowSpec, make_loader, strided
from results_file import append, header
from wam.envs.collect import CollectConfig, collect

SPEC = WindowSpec(obs=(-1, 0), future=strided(4, 4), action=tuple(range(16)))


def windows_per_second(windows: WindowDataset, order: np.ndarray) -> float:
    start = time.perf_counter()
    for i in order:
        windows[int(i)]
    return len(order) / (time.perf_counter() - start)


def loader_per_second(windows: WindowDataset, workers: int, batches: int = 30, batch_size: int = 32) -> float:
    loader = make_loader(windows, batch_size=batch_size, num_workers=workers)
    it = iter(loader)
    next(it)  # start-up of workers is not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    root = Path(args.dataset or "outputs/bench/reader_data")
    if args.dataset is None:
        collect(CollectConfig(tasks="mw5", episodes=4, out=str(root), image_size=96), progress_bar=False)
    torch.set_num_threads(2)
    ds = LeRobotDataset(root)
    key = ds.video_keys[0]
    rng = np.random.default_rng(0)
    order = rng.integers(0, ds.num_frames, args.samples)

    t0 = time.perf_counter()
    for stamp in (root / ".wam_cache").glob("*.json"):
        stamp.unlink()  # time a cold decode-once
    cache = cached_frames(ds, key, progress=False)
    decode_once = time.perf_counter() - t0
    memory = cached_frames(ds, key, in_memory=True, progress=False)
    sources = {
        "in-memory array (baseline)": WindowDataset(ds, SPEC, frames=memory),
        "decode-once cache (memmap)": WindowDataset(ds, SPEC, frames=cache),
        "mp4 decode per window": WindowDataset(ds, SPEC, frames=VideoFrames(ds, key)),
    }
    rates = {}
    for name, windows in sources.items():
        n = order if "mp4" not in name else order[: max(len(order) // 10, 50)]
        rates[name] = windows_per_second(windows, n)
    base = rates["in-memory array (baseline)"]
    loaders = {f"DataLoader memmap, batch 32, {w} workers": loader_per_second(sources["decode-once cache (memmap)"], w)
               for w in (0, 2)}

    lines = [*header("reader_throughput.py"), f"{platform.machine()}, torch {torch.__version__}",
             f"dataset: {ds.num_episodes} episodes, {ds.num_frames} frames, {key} {ds.features[key]['shape']}; "
             f"window: obs {SPEC.obs}, future {SPEC.future}, {len(SPEC.action)} actions",
             f"decode-once (cold, whole dataset): {decode_once:.2f} s = {ds.num_frames / decode_once:.0f} frames/s", "",
             "| source | windows/s | ratio to in-memory |", "|---|---|---|"]
    for name, rate in {**rates, **loaders}.items():
        lines.append(f"| {name} | {rate:,.0f} | {rate / base:.3f} |")
    append("reader_throughput", "Reader throughput (benchmarks/reader_throughput.py)", lines)


if __name__ == "__main__":
    main()
