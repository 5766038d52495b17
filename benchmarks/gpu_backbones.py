"""GPU check of the large-backbone path: the real Wan2.1-T2V-1.3B architecture (random weights: no
download) trains every paradigm for a few steps; prints samples/s, peak GPU memory and MFU.

    .venv/bin/python benchmarks/gpu_backbones.py [--steps 20] [--batch 8] [--image_size 256] \
        [--arch wan2.1-1.3b] [--lora 0] [--checkpointing] [--peak_tflops 989]

On a CPU-only machine it refuses with one line (exit 2). Each paradigm gets a fresh model; latents
and instruction embeddings are random (the VAE is not run: its cost is encoding the dataset once).
bf16 autocast over fp32 master weights, AdamW. MFU = achieved model FLOP/s over `--peak_tflops`
(H100/H200 SXM dense bf16: 989), with FLOPs per sample = 6 x video-transformer parameters x tokens
(+ the action expert's) + 12 x layers x width x tokens^2 (attention, forward + backward); frozen
weights still cost their backward through the activations, so the count is the same for LoRA.
Results append to benchmarks/results/gpu_backbones.md.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from results_file import append, header

VARIANTS = [("representation", "tokens"), ("joint", "tokens"), ("inverse_dynamics", "tokens"),
            ("hierarchical", "tokens"), ("joint", "latent_frame"), ("action_only", "tokens")]


def build(name: str, integration: str, args):
    from wam.backbones.build import frame_tokenizer
    from wam.backbones.lora import LoraConfig
    from wam.nn.tokenizer import TokenizerConfig
    from wam.nn.transformer import BackboneConfig
    from wam.paradigms import PolicyModelConfig, build_paradigm

    backbone = BackboneConfig(kind="wan", arch=args.arch, text_adapter=True, checkpointing=args.checkpointing,
                              mot=args.mot)
    cfg = PolicyModelConfig(backbone=backbone, lora=LoraConfig(rank=args.lora), future=(4, 8, 12, 16), chunk=16,
                            integration=integration)
    return build_paradigm(name, cfg, frame_tokenizer(backbone, TokenizerConfig(image_size=args.image_size)))


def batch(p, b: int, device) -> dict:
    c, h, w = p.parts.frame_shape()
    f = len(p.cfg.future)
    return {"text_emb": torch.randn(b, 384, device=device), "obs.latent": torch.randn(b, 1, c, h, w, device=device),
            "obs.state": torch.randn(b, 1, 4, device=device), "future.latent": torch.randn(b, f, c, h, w, device=device),
            "future_is_pad": torch.zeros(b, f, dtype=torch.bool, device=device),
            "action": torch.rand(b, 16, 4, device=device) * 2 - 1,
            "action_is_pad": torch.zeros(b, 16, dtype=torch.bool, device=device)}


def flops_per_sample(p) -> float:
    net = p.parts.backbone
    c, h, w = p.parts.frame_shape()
    ph, pw = net.patch
    tokens = (1 + len(p.parts.future_times)) * (h // ph) * (w // pw) + 1 + 16
    params = sum(q.numel() for n, q in net.named_parameters() if "lora_" not in n)
    layers = len(net.model.blocks)
    return 6 * params * tokens + 12 * layers * net.width * tokens ** 2


def run(name: str, integration: str, args, device) -> str:
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    p = build(name, integration, args).to(device).train()
    opt = torch.optim.AdamW([q for q in p.parameters() if q.requires_grad], lr=1e-5)
    data = batch(p, args.batch, device)
    times = []
    for step in range(args.steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss, _ = p.loss(data)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    steady = times[3:] or times
    sps = args.batch / (sum(steady) / len(steady))
    mfu = sps * flops_per_sample(p) / (args.peak_tflops * 1e12)
    peak = torch.cuda.max_memory_allocated() / 2**30
    trainable = sum(q.numel() for q in p.parameters() if q.requires_grad) / 1e6
    del p, opt
    return (f"| {name}+{integration} | {trainable:.1f}M | {sps:.2f} | {peak:.1f} | {100 * mfu:.1f}% | "
            f"{float(loss):.3f} |")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--image_size", type=int, default=256)
    parser.add_argument("--arch", default="wan2.1-1.3b")
    parser.add_argument("--lora", type=int, default=0)
    parser.add_argument("--mot", action="store_true")
    parser.add_argument("--checkpointing", action="store_true")
    parser.add_argument("--peak_tflops", type=float, default=989.0)
    parser.add_argument("--only", default="")  # e.g. representation+tokens
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("error: benchmarks/gpu_backbones.py needs a CUDA GPU (none found); the CPU numbers are in "
              "benchmarks/backbone_memory.py", file=sys.stderr)
        return 2
    device = torch.device("cuda")
    lines = header("gpu_backbones.py") + [
        f"{torch.cuda.get_device_name()}, {args.arch} (random weights), batch {args.batch}, {args.image_size} px, "
        f"obs 1 + future 4 frames, chunk 16, LoRA rank {args.lora}, MoT {args.mot}, checkpointing "
        f"{args.checkpointing}, bf16 autocast, {args.steps} steps (first 3 not timed)", "",
        "| variant | trainable | samples/s | peak GiB | MFU | last loss |", "|---|---|---|---|---|---|"]
    for name, integration in VARIANTS:
        if args.only and args.only != f"{name}+{integration}":
            continue
        try:
            lines.append(run(name, integration, args, device))
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            lines.append(f"| {name}+{integration} | out of memory at batch {args.batch} | | | | |")
        print(lines[-1], flush=True)
    append("gpu_backbones", "Diffusers backbones on a GPU: samples/s, peak memory, MFU", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
