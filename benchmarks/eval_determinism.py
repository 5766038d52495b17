"""Are two identical `wam eval` commands identical? Max pixel difference of their videos, and
which eval_info.json values differ (timings excluded), with 1 worker twice and 1 vs 2 workers.

    .venv/bin/python benchmarks/eval_determinism.py [--src src] [--policy outputs/bench/det/p]

Every `wam` command runs as a real subprocess with PYTHONPATH=<--src>, so the same script measures
another checkout (e.g. `--src /path/to/main/src` for the "before" numbers) on the same policy. Without
`--policy` it collects 2 reach-v3 demos at 32 px and trains a tiny action-only policy first (kept
under outputs/bench/det/ for the next run). Results are appended to
benchmarks/results/eval_determinism.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from results_file import append, header
from wam.data.video import decode_video

TIMING_KEYS = {"seconds", "chunk_ms", "ms_per_chunk", "control_hz"}  # wall-clock measurements, never equal
ROOT = Path("outputs/bench/det")
TINY = ["--data.image_size=32", "--tokenizer.steps=10", "--tokenizer.batch_size=16", "--tokenizer.base_channels=8",
        "--tokenizer.latent_channels=4", "--policy.backbone.depth=2", "--policy.backbone.width=64",
        "--policy.chunk=3", "--policy.sample_steps=2", "--optim.steps=20", "--optim.batch_size=8",
        "--optim.ckpt_every=10", "--text_encoder=hash", "--paradigm=action_only"]


def wam(src: str, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "wam", *args], env=env, check=True, stdout=subprocess.DEVNULL)


def without_timings(x):
    if isinstance(x, dict):
        return {k: without_timings(v) for k, v in x.items() if k not in TIMING_KEYS and k not in ("out", "workers")}
    if isinstance(x, list):
        return [without_timings(v) for v in x]
    return x


def differences(a, b, path: str = "") -> list[str]:
    """Dotted paths where two JSON trees differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [path or "."]


def compare(a: Path, b: Path) -> tuple[int, list[str]]:
    """(max |pixel difference| over every saved video, eval_info paths that differ)."""
    worst = 0
    for video in sorted(a.glob("*.mp4")):
        x, y = decode_video(video), decode_video(b / video.name)
        if x.shape != y.shape:
            worst = 255
            continue
        worst = max(worst, int(np.abs(x.astype(int) - y.astype(int)).max()))
    info = [without_timings(json.loads((d / "eval_info.json").read_text())) for d in (a, b)]
    return worst, differences(*info)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", default="src", help="the checkout's src/ whose wam is measured")
    parser.add_argument("--policy", default="")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--max_steps", type=int, default=40)
    args = parser.parse_args()
    src = str(Path(args.src).resolve())
    policy = Path(args.policy or ROOT / "p")
    if not args.policy and not (policy / "checkpoints/last").exists():
        wam(src, "collect", "--tasks=reach-v3", "--episodes=2", "--image_size=32", "--workers=1", f"--out={ROOT / 'd'}")
        wam(src, "train", f"--data.path={ROOT / 'd'}", "--data.val_fraction=0.5", f"--out={policy}", *TINY)
    runs = {}
    for name, workers in (("a", 1), ("b", 1), ("c", 2)):
        out = ROOT / f"eval_{name}"
        shutil.rmtree(out, ignore_errors=True)
        wam(src, "eval", f"--policy={policy}", "--tasks=reach-v3", f"--episodes={args.episodes}",
            f"--max_steps={args.max_steps}", f"--videos={args.episodes}", f"--workers={workers}", f"--out={out}")
        runs[name] = out
    lines = header("eval_determinism.py") + [
        f"wam from `{args.src}`, policy `{policy}`, {args.episodes} reach-v3 episodes of <= {args.max_steps} steps; "
        f"timing keys ignored: {', '.join(sorted(TIMING_KEYS))}", "",
        "| runs | max pixel difference of the videos | eval_info.json values that differ |", "|---|---|---|"]
    for label, (x, y) in {"1 worker, twice": ("a", "b"), "1 worker vs 2 workers": ("a", "c")}.items():
        worst, diff = compare(runs[x], runs[y])
        shown = ", ".join(diff[:6]) + (f" (+{len(diff) - 6} more)" if len(diff) > 6 else "")
        lines.append(f"| {label} | {worst} | {len(diff)}{': ' + shown if diff else ''} |")
    success = {k: json.loads((d / "eval_info.json").read_text())["overall"]["success"] for k, d in runs.items()}
    lines.append("\nsuccess: " + ", ".join(f"run {k} {v:.2f}" for k, v in success.items()) + " (a, b: 1 worker; c: 2)")
    append("eval_determinism", "Two identical `wam eval` commands: same videos and eval_info.json?", lines)


if __name__ == "__main__":
    main()
