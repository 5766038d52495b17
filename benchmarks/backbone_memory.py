"""Parameters, trainable parameters and CPU peak memory of a training step on the diffusers backbones, and
the latency of an action chunk representation-only vs joint, as ratios within one run.

    .venv/bin/python benchmarks/backbone_memory.py [--kinds wan,cosmos] [--sizes tiny,medium] [--batch 4]

Fine-tuning modes, each measured in a fresh subprocess (so one's peak cannot hide another's):
    full      every weight of the video transformer trains (the baseline of the ratios)
    lora      LoRA rank 16 on attention (to_q, to_k, to_v, to_out.0), the video weights frozen
    ckpt      full fine-tuning with activation checkpointing per block
    frozen    the video expert frozen, a Mixture-of-Transformers action expert trains (wan only)
Peak memory = the child's max RSS during one representation-only training step (forward, backward,
AdamW step) minus its RSS just before it: activations, gradients and optimizer state. Latency: one
`act` (10 flow steps, batch 1) of representation-only (actions only) and joint (future + actions)
on the medium size, median of repeats, alternated. Appends to benchmarks/results/backbone_memory.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from results_file import append, header

MODES = {"full": {}, "lora": {"lora.rank": 16}, "ckpt": {"backbone.checkpointing": True},
         "frozen": {"backbone.mot": True, "lora.freeze_video": True}}


def _paradigm(kind: str, arch: str, name: str = "representation", **over):
    from wam.backbones.build import frame_tokenizer
    from wam.backbones.lora import LoraConfig
    from wam.nn.tokenizer import TokenizerConfig
    from wam.nn.transformer import BackboneConfig
    from wam.paradigms import PolicyModelConfig, build_paradigm

    backbone = BackboneConfig(kind=kind, arch=arch, mot=over.get("backbone.mot", False),
                              checkpointing=over.get("backbone.checkpointing", False))
    lora = LoraConfig(rank=over.get("lora.rank", 0), freeze_video=over.get("lora.freeze_video", False))
    cfg = PolicyModelConfig(backbone=backbone, lora=lora, future=(4, 8, 12, 16), chunk=16, sample_steps=10)
    return build_paradigm(name, cfg, frame_tokenizer(backbone, TokenizerConfig(image_size=64)))


def _batch(b: int) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"text_emb": torch.randn(b, 384, generator=g), "obs.latent": torch.randn(b, 1, 16, 8, 8, generator=g),
            "obs.state": torch.randn(b, 1, 4, generator=g), "future.latent": torch.randn(b, 4, 16, 8, 8, generator=g),
            "future_is_pad": torch.zeros(b, 4, dtype=torch.bool), "action": torch.rand(b, 16, 4, generator=g) * 2 - 1,
            "action_is_pad": torch.zeros(b, 16, dtype=torch.bool)}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def one(kind: str, arch: str, mode: str, batch: int) -> dict:
    """In a child process: sizes and the peak extra memory of one training step."""
    torch.manual_seed(0)
    p = _paradigm(kind, arch, **MODES[mode]).train()
    backbone = [q for n, q in p.named_parameters() if n.startswith("parts.backbone.model.")]
    params = sum(q.numel() for n, q in p.named_parameters() if not n.startswith("parts.tokenizer."))  # VAE apart
    trainable = sum(q.numel() for q in p.parameters() if q.requires_grad)
    opt = torch.optim.AdamW([q for q in p.parameters() if q.requires_grad], lr=1e-4)
    data = _batch(batch)
    before = _rss_mb()
    t0 = time.perf_counter()
    loss, _ = p.loss(data)
    loss.backward()
    opt.step()
    step_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"params": params, "video_params": sum(q.numel() for q in backbone), "trainable": trainable,
            "peak_mb": peak - before, "step_s": step_s}


def latency(kind: str, repeats: int) -> dict[str, float]:
    """Median seconds of one action chunk (batch 1), representation-only vs joint, same weights."""
    torch.manual_seed(0)
    repr_ = _paradigm(kind, "medium", "representation").eval()
    joint = _paradigm(kind, "medium", "joint").eval()
    joint.load_state_dict(repr_.state_dict())
    data = _batch(1)
    times: dict[str, list[float]] = {"representation": [], "joint": []}
    with torch.no_grad():
        for _ in range(repeats):
            for name, p in (("representation", repr_), ("joint", joint)):
                t0 = time.perf_counter()
                p.act(data, torch.Generator().manual_seed(0))
                times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kinds", default="wan,cosmos")
    parser.add_argument("--sizes", default="tiny,medium")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", default="")  # internal: kind,arch,mode in a child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(*args.one.split(","), args.batch)))
        return
    lines = header("backbone_memory.py") + [
        f"CPU, fp32, torch {torch.__version__}, batch {args.batch}, 64 px frames (8x8 latents, 16 tokens a frame), "
        "obs 1 + future 4 frames, chunk 16; peak = extra RSS of one training step (representation-only)", "",
        "| backbone | size | mode | params | video params | trainable | trainable / full | peak MB | peak / full | step s |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for kind in args.kinds.split(","):
        for arch in args.sizes.split(","):
            rows = {}
            for mode in MODES:
                if mode == "frozen" and kind != "wan":
                    continue
                cmd = [sys.executable, __file__, f"--one={kind},{arch},{mode}", f"--batch={args.batch}"]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
                rows[mode] = r = json.loads(out)
                full = rows["full"]
                lines.append(f"| {kind} | {arch} | {mode} | {r['params'] / 1e6:.2f}M | {r['video_params'] / 1e6:.2f}M | "
                             f"{r['trainable'] / 1e6:.3f}M | {r['trainable'] / full['trainable']:.3f} | "
                             f"{r['peak_mb']:.0f} | {r['peak_mb'] / full['peak_mb']:.2f} | {r['step_s']:.2f} |")
    lines += ["", "Latency of one action chunk (medium size, batch 1, 10 flow steps, median of "
              f"{args.repeats}), CPU:", "", "| backbone | representation-only s | joint s | joint / representation |",
              "|---|---|---|---|"]
    for kind in args.kinds.split(","):
        lat = latency(kind, args.repeats)
        lines.append(f"| {kind} | {lat['representation']:.3f} | {lat['joint']:.3f} | "
                     f"{lat['joint'] / lat['representation']:.2f} |")
    append("backbone_memory", "Diffusers backbones: parameters, trainable parameters, peak memory, latency", lines)


if __name__ == "__main__":
    main()
