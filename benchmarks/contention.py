"""Training beside another CPU-bound wam process: samples/s alone vs with a second one, default settings.

    .venv/bin/python benchmarks/contention.py [--seconds 20]

Each measurement is a fresh process started the way the `wam` command starts (wam.runs.threads:
`quiet_openmp()` before torch is imported, torch's default thread count, `--optim.precision=auto`)
that trains a small world model for `--seconds` and reports samples/s; "together" runs it while a
second identical training process runs. `spinning` repeats both without `quiet_openmp()` (OpenMP's
default busy-waiting: what wam did before). OMP_NUM_THREADS is removed from the children's
environment so that they use their defaults. Target: keep >= 40% of the alone rate. Results are
appended to benchmarks/results/contention.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def child(seconds: float, quiet: bool) -> None:
    """Train steps for `seconds` (after a warm-up) and print the rate as JSON; runs forever if seconds < 0."""
    from wam.runs.threads import quiet_openmp

    if quiet:
        quiet_openmp()
    import torch

    from wam.models.world_model import VideoWorldModel, WorldModelConfig
    from wam.nn.tokenizer import FrameAutoencoder, TokenizerConfig
    from wam.nn.transformer import BackboneConfig
    from wam.runs.precision import choose_precision

    torch.manual_seed(0)
    model = VideoWorldModel(WorldModelConfig(backbone=BackboneConfig(depth=2)), FrameAutoencoder(TokenizerConfig()))
    b, c, g = 16, model.tokenizer.cfg.latent_channels, model.grid
    batch = {"obs.latent": torch.randn(b, 1, c, g, g), "future.latent": torch.randn(b, 4, c, g, g),
             "future_is_pad": torch.zeros(b, 4, dtype=torch.bool), "text_emb": torch.randn(b, 384)}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    prec = choose_precision("auto", "cpu")

    def step() -> None:
        with prec.autocast():
            loss = model.loss(batch)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(), step()
    print(json.dumps({"ready": True}), flush=True)
    start, steps = time.perf_counter(), 0
    while seconds < 0 or time.perf_counter() - start < seconds:
        step()
        steps += 1
    print(json.dumps({"rate": steps * b / (time.perf_counter() - start), "threads": torch.get_num_threads(),
                      "precision": prec.name, "wait": os.environ.get("OMP_WAIT_POLICY", "unset")}), flush=True)


def spawn(seconds: float, quiet: bool) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME")}
    cmd = [sys.executable, __file__, "--child", str(seconds)] + ([] if quiet else ["--spinning"])
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)


def measure(seconds: float, quiet: bool, beside: bool) -> dict:
    hog = spawn(-1, quiet) if beside else None
    if hog is not None:
        hog.stdout.readline()  # the second process is training
    proc = spawn(seconds, quiet)
    lines = proc.communicate()[0].splitlines()
    if hog is not None:
        hog.kill()
        hog.wait()
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--child", type=float, default=None)
    parser.add_argument("--spinning", action="store_true")
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child, quiet=not args.spinning)
    from results_file import append, header

    lines = [*header("contention.py"), f"load average {os.getloadavg()[0]:.1f} at the start; {args.seconds:.0f} s a measurement", "",
             "| OpenMP waiting | threads | precision | alone samples/s | beside a second training | kept |",
             "|---|---|---|---|---|---|"]
    for quiet in (True, False):
        alone, together = measure(args.seconds, quiet, False), measure(args.seconds, quiet, True)
        name = "passive (wam default)" if quiet else "spinning (OpenMP default, before)"
        lines.append(f"| {name} | {alone['threads']} | {alone['precision']} | {alone['rate']:.1f} | "
                     f"{together['rate']:.1f} | {100 * together['rate'] / alone['rate']:.0f}% |")
        print(lines[-1], flush=True)
    append("contention", "Training beside a second CPU-bound process (benchmarks/contention.py)", lines)


if __name__ == "__main__":
    main()
