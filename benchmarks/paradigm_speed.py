"""Every registered variant's cost in one process: training samples/s and ms per action chunk,
as ratios to the action-only baseline measured in the same run; the last row is the outside
reference policy (wam.reference: a conv image policy on the 64 px frames, not a WAM).

    .venv/bin/python benchmarks/paradigm_speed.py [--depth 4] [--batch 32] [--repeats 10] [--device cuda] [--precision auto]

Same model family and shapes as `wam train`'s defaults (64 px frames -> (8, 8, 8) latents, patch 2,
one obs frame, futures at +4/8/12/16, a 16-action chunk, 10 sampling steps). ms per chunk is one
`act` call at batch 1 in fp32 with one thread per process, as `wam eval`'s workers run it, so the
numbers are the latency a robot would see from this CPU. Results are appended to
benchmarks/results/paradigm_speed.md; the machine is noisy, so compare ratios within one block.
Training autocasts to `--precision` (default auto: what `wam train` would choose on this device,
wam.runs.precision). With `--device cuda` the same model runs on a GPU (fp32 acting, CUDA
synchronised timings), for the latency a GPU box would give.

    .venv/bin/python benchmarks/paradigm_speed.py --acting [--sample_steps 1,2,4,10]

measures acting only: ms per chunk of every variant with the K/V cache of the clean groups off and
on, at each number of sampling steps, calls interleaved (medians), as ratios to action-only with
the cache off at 10 steps (the old default) measured in the same run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import torch

from results_file import append, header
from wam.nn.tokenizer import FrameAutoencoder, TokenizerConfig
from wam.nn.transformer import BackboneConfig
from wam.paradigms import VARIANTS, PolicyModelConfig, build_paradigm
from wam.reference import ConvReference
from wam.runs.device import resolve_device
from wam.runs.precision import Precision, choose_precision


def make_batch(cfg: PolicyModelConfig, b: int, device: str = "cpu", c: int = 8, g: int = 8, size: int = 64) -> dict:
    batch = {"obs.latent": torch.randn(b, len(cfg.obs), c, g, g), "obs.state": torch.randn(b, len(cfg.obs), 4),
             "obs.image": torch.randint(0, 256, (b, len(cfg.obs), 3, size, size), dtype=torch.uint8),
            "future.latent": torch.randn(b, len(cfg.future), c, g, g),
            "future_is_pad": torch.zeros(b, len(cfg.future), dtype=torch.bool),
            "action": torch.rand(b, cfg.chunk, cfg.action_dim) * 2 - 1,
            "action_is_pad": torch.zeros(b, cfg.chunk, dtype=torch.bool), "text_emb": torch.randn(b, 384)}
    return {k: v.to(device) for k, v in batch.items()}


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def train_rate(paradigm, batch: dict, steps: int, device, prec: Precision) -> float:
    """Samples/s of forward + backward + AdamW step, autocast to `prec` (the trainer's choice)."""
    opt = torch.optim.AdamW([p for p in paradigm.parameters() if p.requires_grad], lr=1e-4)
    scaler = prec.grad_scaler()

    def step() -> None:
        with prec.autocast():
            loss = paradigm.loss(batch)[0]
        opt.zero_grad()
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * batch["text_emb"].shape[0] / (time.perf_counter() - start)


def act_ms(paradigm, batch: dict, repeats: int, device: str) -> float:
    paradigm.eval()
    with torch.no_grad():
        paradigm.act(batch)
        sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            if hasattr(paradigm, "reset"):
                paradigm.reset()  # every call pays for a full plan (the worst case of hierarchical)
            paradigm.act(batch)
        sync(device)
    paradigm.train()
    return 1000 * (time.perf_counter() - start) / repeats


def act_ms_interleaved(models: list, batch: dict, settings: list[tuple[int, bool]], repeats: int,
                       device: str) -> list[list[float]]:
    """Median ms per chunk of each model under each (steps, kv_cache) setting, all calls interleaved."""
    times = [[[] for _ in settings] for _ in models]
    with torch.no_grad():
        for m in models:
            m.eval().act(batch)
        for _ in range(repeats):
            for i, m in enumerate(models):
                for j, (steps, kv) in enumerate(settings):
                    m.cfg.sample_steps, m.cfg.kv_cache = steps, kv
                    if hasattr(m, "reset"):
                        m.reset()
                    sync(device)
                    start = time.perf_counter()
                    m.act(batch)
                    sync(device)
                    times[i][j].append(1000 * (time.perf_counter() - start))
    return [[float(torch.tensor(t).median()) for t in row] for row in times]


def acting_table(args: argparse.Namespace) -> list[str]:
    steps = [int(s) for s in args.sample_steps.split(",")]
    settings = [(n, kv) for n in steps for kv in (False, True)]
    torch.set_num_threads(1)
    named = [(f"{n}/{i}", m.to(args.device)) for n, i, m, _ in models(args.depth)
             if n != ConvReference.name and (not args.only or f"{n}/{i}" in args.only.split(","))]
    ms = act_ms_interleaved([m for _, m in named], make_batch(PolicyModelConfig(), 1, args.device), settings,
                            args.repeats, args.device)
    base = ms[0][settings.index((10, False))] if (10, False) in settings else ms[0][0]
    head = " | ".join(f"{n} steps{' cached' if kv else ''}" for n, kv in settings)
    lines = ["", f"ms per chunk (median of {args.repeats}, batch 1, fp32, 1 thread, depth {args.depth}); "
             f"in brackets: x action-only uncached at 10 steps, same run", "",
             f"| variant | {head} |", "|---|" + "---|" * len(settings)]
    for (name, _), row in zip(named, ms):
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f} ({v / base:.2f})" for v in row) + " |")
    by = {name: row for (name, _), row in zip(named, ms)}
    j = settings.index((10, True)) if (10, True) in settings else len(settings) - 1
    rep, act = by.get("representation/tokens"), by.get("action_only/tokens")
    if rep and act:
        lines.append(f"\nrepresentation / action-only, cached, {settings[j][0]} steps: {rep[j] / act[j]:.2f}x")
    for name, row in by.items():
        if (10, False) in settings and (10, True) in settings:
            off, on = row[settings.index((10, False))], row[settings.index((10, True))]
            lines.append(f"- {name}: the cache saves {100 * (1 - on / off):.0f}% at 10 steps")
    return lines


def measure(model, cfg: PolicyModelConfig, args: argparse.Namespace) -> tuple[int, float, float]:
    """(trainable parameters, train samples/s on 2 threads, ms per chunk on 1 thread) of one model."""
    dev = args.device
    prec = getattr(args, "prec", None) or choose_precision(getattr(args, "precision", "auto"), dev)
    model = model.to(dev)
    torch.set_num_threads(2)
    rate = train_rate(model, make_batch(cfg, args.batch, dev), args.steps, dev, prec)
    torch.set_num_threads(1)
    ms = act_ms(model, make_batch(cfg, 1, dev), args.repeats, dev)
    return sum(p.numel() for p in model.parameters() if p.requires_grad), rate, ms


def models(depth: int) -> Iterator[tuple[str, str, torch.nn.Module, PolicyModelConfig]]:
    """Every registered variant (action-only first), then the outside reference policy."""
    tok = FrameAutoencoder(TokenizerConfig(image_size=64, latent_channels=8))
    for (name, integration) in sorted(VARIANTS, key=lambda k: (k[0] != "action_only", k)):
        cfg = PolicyModelConfig(backbone=BackboneConfig(depth=depth), integration=integration)
        torch.manual_seed(0)
        yield name, integration, build_paradigm(name, cfg, tok), cfg
    torch.manual_seed(0)
    yield ConvReference.name, "-", ConvReference(PolicyModelConfig(), tok.cfg.image_size), PolicyModelConfig()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--precision", default="auto", help="training: auto | fp32 | bf16 | fp16")
    parser.add_argument("--acting", action="store_true", help="acting only: K/V cache off/on x sampling steps")
    parser.add_argument("--sample_steps", default="1,2,4,10")
    parser.add_argument("--only", default="", help="acting: these variants only, e.g. action_only/tokens,joint/tokens")
    args = parser.parse_args()
    dev = args.device = resolve_device(args.device)
    args.prec = choose_precision(args.precision, dev, flag="--precision")
    print(args.prec.line())
    if args.acting:
        append("paradigm_speed", "", [*header("paradigm_speed.py"), f"torch {torch.__version__}; acting only",
                                      *acting_table(args)])
        return
    rows = []
    for name, integration, model, cfg in models(args.depth):
        n, rate, ms = measure(model, cfg, args)
        rows.append((name, integration, n, rate, ms))
        print(f"{name}/{integration}: {rate:.1f} samples/s, {ms:.1f} ms per chunk", flush=True)
    base = rows[0]
    lines = [*header("paradigm_speed.py"),
             f"torch {torch.__version__} on {torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'this CPU'}; "
             f"training: batch {args.batch}, {args.prec.name} ({args.precision}), 2 threads; "
             f"acting: batch 1, fp32, 1 thread, {PolicyModelConfig().sample_steps} sampling steps; depth {args.depth}",
             "", "| paradigm | integration | trainable params | train samples/s | x action-only | ms per chunk | x action-only |",
             "|---|---|---|---|---|---|---|"]
    for name, integration, n, rate, ms in rows:
        lines.append(f"| {name} | {integration} | {n / 1e6:.2f}M | {rate:.1f} | {rate / base[3]:.2f} | "
                     f"{ms:.1f} | {ms / base[4]:.2f} |")
    append("paradigm_speed", "Paradigm speed: training throughput and ms per action chunk (benchmarks/paradigm_speed.py)", lines)


if __name__ == "__main__":
    main()
