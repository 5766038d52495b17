"""GPU check: train every paradigm (and the world model) ~50 steps on CUDA and report samples/s, peak
memory and MFU against this GPU's measured matmul peak. Run it when a GPU is lent; refuses on a CPU.

    .venv/bin/python benchmarks/gpu_check.py [--steps 50] [--batch 32] [--depth 4] [--device cuda]
    .venv/bin/python benchmarks/gpu_check.py --device cpu --steps 2 --batch 4 --depth 1   # smoke test

Same shapes as benchmarks/paradigm_speed.py (the defaults of `wam train`); the precision is what
`--optim.precision=auto` picks on the device (wam.runs.precision: bf16 where the GPU has it), fp16
with a loss scaler. FLOPs of one training step are counted with torch's FlopCounterMode; the peak is
a large square matmul in the chosen precision, timed on the same device, so MFU = achieved FLOP/s
over that peak. Results are appended to benchmarks/results/gpu_check.md.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from paradigm_speed import make_batch, models, sync
from results_file import append, header
from wam.errors import WamError
from wam.models.world_model import VideoWorldModel, WorldModelConfig
from wam.nn.tokenizer import FrameAutoencoder, TokenizerConfig
from wam.nn.transformer import BackboneConfig
from wam.runs.device import resolve_device
from wam.runs.precision import Precision, choose_precision


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, seconds: float = 1.0) -> float:
    """FLOP/s of an n x n matmul in `dtype` on `device` (best sustained rate over `seconds`)."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            a @ b
        count += 10
        sync(device)
    return 2 * n**3 * count / (time.perf_counter() - start)


def train(model: torch.nn.Module, batch: dict, steps: int, prec: Precision, device) -> dict:
    """samples/s, FLOPs per step and peak memory of `steps` forward+backward+AdamW steps."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    scaler = prec.grad_scaler()

    def step() -> None:
        with prec.autocast():
            loss = model.loss(batch)[0]
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    step()  # warm-up done
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    b = batch["text_emb"].shape[0]
    return {"rate": steps * b / seconds, "flops": counter.get_total_flops(), "step_s": seconds / steps, "mem": peak}


def world_model(depth: int, device) -> tuple[str, str, torch.nn.Module, dict]:
    torch.manual_seed(0)
    wm = VideoWorldModel(WorldModelConfig(backbone=BackboneConfig(depth=depth)), FrameAutoencoder(TokenizerConfig()))
    return "world model (pretrain)", "-", wm.to(device), {}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--peak_n", type=int, default=8192, help="matmul size for the peak")
    args = parser.parse_args()
    try:
        device = resolve_device(args.device)
    except WamError as exc:
        print(f"gpu_check: {exc}. This script measures a GPU; for a smoke test on the CPU pass "
              f"--device cpu --steps 2 --batch 4 --depth 1", file=sys.stderr)
        return 2
    prec = choose_precision("auto", device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{name}: {prec.line()}", flush=True)
    peak = matmul_peak(device, prec.dtype, args.peak_n if device.type == "cuda" else 512)
    print(f"matmul peak ({prec.name}): {peak / 1e12:.1f} TFLOP/s", flush=True)
    lines = [*header("gpu_check.py"),
             f"{name}, torch {torch.__version__}, {prec.line()}; matmul peak {peak / 1e12:.1f} TFLOP/s "
             f"({prec.name}, {args.peak_n if device.type == 'cuda' else 512}^2); batch {args.batch}, depth {args.depth}, "
             f"{args.steps} steps", "",
             "| model | integration | samples/s | ms / step | peak memory GiB | TFLOP/s | MFU |", "|---|---|---|---|---|---|---|"]
    wm_name, _, wm, _ = world_model(args.depth, device)
    c, g = wm.tokenizer.cfg.latent_channels, wm.grid
    wm_batch = {"obs.latent": torch.randn(args.batch, 1, c, g, g, device=device),
                "future.latent": torch.randn(args.batch, len(wm.cfg.future), c, g, g, device=device),
                "future_is_pad": torch.zeros(args.batch, len(wm.cfg.future), dtype=torch.bool, device=device),
                "text_emb": torch.randn(args.batch, 384, device=device)}
    runs = [(wm_name, "-", wm, wm_batch)]
    runs += [(n, i, m.to(device), make_batch(cfg, args.batch, device)) for n, i, m, cfg in models(args.depth)]
    for model_name, integration, model, batch in runs:
        r = train(model, batch, args.steps, prec, device)
        achieved = r["flops"] / r["step_s"]
        lines.append(f"| {model_name} | {integration} | {r['rate']:.0f} | {1000 * r['step_s']:.1f} | {r['mem']:.2f} | "
                     f"{achieved / 1e12:.2f} | {100 * achieved / peak:.1f}% |")
        print(lines[-1], flush=True)
        model.cpu()
    if device.type == "cuda":
        append("gpu_check", "GPU check: every paradigm on one GPU (benchmarks/gpu_check.py)", lines)
    else:
        print("(a smoke test on the CPU: not written to benchmarks/results/gpu_check.md)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
