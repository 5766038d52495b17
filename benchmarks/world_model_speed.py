"""World-model speed on this CPU: training samples/s, the fraction of the matmul peak it reaches,
and ms per imagined clip against the number of sampling steps, all in one process.

    .venv/bin/python benchmarks/world_model_speed.py [--depth 4] [--mot] [--batch 32] [--image 64]

The peak is measured here too (a square bf16 / fp32 matmul), so the fraction is against the same
machine under the same load. FLOPs of a training step are counted by torch's FlopCounterMode.
Results are appended to benchmarks/results/world_model_speed.md.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from results_file import append, header
from wam.models.world_model import VideoWorldModel, WorldModelConfig
from wam.nn.tokenizer import FrameAutoencoder, TokenizerConfig
from wam.nn.transformer import BackboneConfig


def matmul_peak(dtype: torch.dtype, n: int = 1024, seconds: float = 2.0) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start)


def make_batch(model: VideoWorldModel, b: int) -> dict:
    c, g = model.tokenizer.cfg.latent_channels, model.grid
    return {"obs.latent": torch.randn(b, len(model.cfg.obs), c, g, g),
            "future.latent": torch.randn(b, len(model.cfg.future), c, g, g),
            "future_is_pad": torch.zeros(b, len(model.cfg.future), dtype=torch.bool),
            "text_emb": torch.randn(b, 384)}


def train_rate(model: VideoWorldModel, batch: dict, bf16: bool, steps: int = 8) -> tuple[float, float]:
    """(samples/s, FLOPs per sample) of forward + backward + AdamW step."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    ctx = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)  # noqa: E731
    counter = FlopCounterMode(display=False)
    with counter, ctx():
        model.loss(batch)[0].backward()
    for _ in range(2):  # warm-up
        with ctx():
            loss = model.loss(batch)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    start = time.perf_counter()
    for _ in range(steps):
        with ctx():
            loss = model.loss(batch)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    b = batch["text_emb"].shape[0]
    return steps * b / (time.perf_counter() - start), counter.get_total_flops() / b


def clip_ms(model: VideoWorldModel, steps: int, bf16: bool, repeats: int = 5) -> float:
    frames = torch.randint(0, 255, (1, len(model.cfg.obs), 3, model.tokenizer.cfg.image_size,
                                    model.tokenizer.cfg.image_size), dtype=torch.uint8)
    text = torch.randn(1, 384)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        model.imagine(frames, text, steps=steps)
        start = time.perf_counter()
        for _ in range(repeats):
            model.imagine(frames, text, steps=steps)
    return 1000 * (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--mot", action="store_true")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image", type=int, default=64)
    parser.add_argument("--latent_channels", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    tok = FrameAutoencoder(TokenizerConfig(image_size=args.image, latent_channels=args.latent_channels))
    model = VideoWorldModel(WorldModelConfig(backbone=BackboneConfig(depth=args.depth, mot=args.mot)), tok)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    tokens = 1 + (len(model.cfg.obs) + len(model.cfg.future)) * (model.grid // model.cfg.patch) ** 2
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    batch = make_batch(model, args.batch)
    lines = [*header("world_model_speed.py"), f"torch {torch.__version__}, {torch.get_num_threads()} threads",
             f"model: depth {args.depth}, width {model.cfg.backbone.resolved_width()}, mot {args.mot}, "
             f"{n_params / 1e6:.2f}M trainable parameters, {tokens} tokens a sample, batch {args.batch}",
             f"matmul peak (1024^2): fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s",
             "", "| precision | train samples/s | GFLOP/sample | achieved GFLOP/s | fraction of peak |",
             "|---|---|---|---|---|"]
    for name, bf16 in (("fp32", False), ("bf16 autocast", True)):
        rate, flops = train_rate(model, batch, bf16)
        peak = peaks["bf16" if bf16 else "fp32"]
        lines.append(f"| {name} | {rate:.1f} | {flops / 1e9:.2f} | {rate * flops / 1e9:.0f} | "
                     f"{rate * flops / peak:.2f} |")
    model.eval()
    lines += ["", "| sampling steps | ms per imagined clip (fp32) | ms (bf16) | ratio bf16/fp32 |", "|---|---|---|---|"]
    for steps in (1, 2, 5, 10, 20):
        fp32, bf16 = clip_ms(model, steps, False), clip_ms(model, steps, True)
        lines.append(f"| {steps} | {fp32:.0f} | {bf16:.0f} | {bf16 / fp32:.2f} |")
    append("world_model_speed", "World-model speed (benchmarks/world_model_speed.py)", lines)


if __name__ == "__main__":
    main()
