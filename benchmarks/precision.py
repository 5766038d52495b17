"""fp32 vs bf16 autocast on this CPU, and what `--optim.precision=auto` picks, as ratios in one run.

    .venv/bin/python benchmarks/precision.py [--quick]
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 .venv/bin/python benchmarks/precision.py

The second line makes a CPU with native bf16 behave like one without (AVX2: bf16 is emulated,
20-50x slower). Workloads: a 512x512 matmul, a 32-channel 3x3 conv forward+backward, one training
step (forward, backward, AdamW) of the frame tokenizer and of the world model. fp32 and bf16 runs
alternate, the best (least disturbed by other processes) of each is kept. `auto` is decided by wam.runs.precision (its micro-benchmark
is run afresh and cached); the last column is auto's time over the faster of fp32 and bf16, which
must stay <= 1.2. Results are appended to benchmarks/results/precision.md.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from results_file import append, header
from wam.models.world_model import VideoWorldModel, WorldModelConfig
from wam.nn.tokenizer import FrameAutoencoder, TokenizerConfig
from wam.nn.transformer import BackboneConfig
from wam.runs.precision import ISA_VARS, choose_precision, cpu_measurement

LIMIT = 1.2


def timed(fn, bf16: bool) -> float:
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        fn()
    return 1000 * (time.perf_counter() - t0)


def train_step(model: torch.nn.Module, loss_fn):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step():
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def workloads(quick: bool) -> dict:
    g = torch.Generator().manual_seed(0)
    n = 256 if quick else 512
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    conv = torch.nn.Conv2d(32, 32, 3, padding=1)
    x = torch.randn(4 if quick else 8, 32, 32, 32, generator=g, requires_grad=True)
    tok = FrameAutoencoder(TokenizerConfig(image_size=64, base_channels=16))
    frames = torch.randint(0, 255, (4 if quick else 16, 3, 64, 64), dtype=torch.uint8, generator=g)
    wm = VideoWorldModel(WorldModelConfig(backbone=BackboneConfig(depth=1 if quick else 2)),
                         FrameAutoencoder(TokenizerConfig(image_size=64)))
    bsz, c, grid = 4 if quick else 16, wm.tokenizer.cfg.latent_channels, wm.grid
    batch = {"obs.latent": torch.randn(bsz, len(wm.cfg.obs), c, grid, grid, generator=g),
             "future.latent": torch.randn(bsz, len(wm.cfg.future), c, grid, grid, generator=g),
             "future_is_pad": torch.zeros(bsz, len(wm.cfg.future), dtype=torch.bool),
             "text_emb": torch.randn(bsz, 384, generator=g)}
    return {f"matmul {n}x{n}": lambda: a @ b,
            "conv 32ch 3x3 fwd+bwd": lambda: conv(x).float().square().mean().backward(),
            "tokenizer training step": train_step(tok, lambda: tok.losses(frames)["loss"]),
            "world model training step": train_step(wm, lambda: wm.loss(batch)[0])}


def measure(fn, rounds: int) -> dict[str, float]:
    timed(fn, False), timed(fn, True)  # warm-up both
    runs: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(rounds):  # alternate, so a burst of load hits both alike
        runs["fp32"].append(timed(fn, False))
        runs["bf16"].append(timed(fn, True))
    return {k: min(v) for k, v in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 rounds (a smoke test)")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    m = cpu_measurement(refresh=True)
    auto = choose_precision("auto", "cpu")
    env = ", ".join(f"{v}={os.environ.get(v, '')}" for v in ISA_VARS)
    head = header("precision.py")
    isa = " ".join(f"{v}={os.environ[v]}" for v in ISA_VARS if os.environ.get(v))
    if isa:  # the variables are part of the command
        head[1] = head[1].replace("command: `", f"command: `{isa} ")
    lines = [*head,
             f"torch {torch.__version__}, capability {torch.backends.cpu.get_cpu_capability()}, "
             f"{torch.get_num_threads()} threads, {env}, load average {os.getloadavg()[0]:.1f}",
             f"auto picks **{auto.name}**: {auto.reason}", "",
             "| workload | fp32 ms | bf16 ms | bf16 / fp32 time | auto | auto / best |", "|---|---|---|---|---|---|"]
    worst = 0.0
    for name, fn in workloads(args.quick).items():
        t = measure(fn, rounds)
        ratio = t[auto.name] / min(t.values())
        worst = max(worst, ratio)
        lines.append(f"| {name} | {t['fp32']:.2f} | {t['bf16']:.2f} | {t['bf16'] / t['fp32']:.2f} | {auto.name} | "
                     f"{ratio:.2f} |")
        print(lines[-1], flush=True)
    verdict = "within" if worst <= LIMIT else "OVER"
    lines += ["", f"auto is at most {worst:.2f}x the faster precision ({verdict} the {LIMIT}x limit); "
              f"micro-benchmark: matmul x{m['matmul_speedup']:.2f}, conv x{m['conv_speedup']:.2f} (bf16 speed-up)"]
    append("precision", "fp32 vs bf16 and the auto choice (benchmarks/precision.py)", lines)


if __name__ == "__main__":
    main()
