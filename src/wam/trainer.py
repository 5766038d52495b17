"""The training loop shared by `wam pretrain` and `wam train`, readable top to bottom.

A model only has to provide `loss(batch, generator=None) -> (loss, metrics)`. The loop adds:
AdamW with linear warm-up and cosine decay, gradient clipping, bf16 autocast, EMA weights, a
held-out validation loss (EMA weights, fixed noise), a progress bar with loss and samples/s, a CSV
log with a PNG of its curves, and checkpoints every `ckpt_every` steps (and on Ctrl-C).

Exact resume: the data order is a pure function of (seed, step) (`EpochSampler`), and the
checkpoint holds the optimizer, scheduler and RNG states, so a run killed and resumed produces
the same weights as one that never stopped. A non-finite loss stops the run before anything is
saved, so the last good checkpoint is never overwritten by a broken one.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from wam.checkpoint import load_checkpoint, save_checkpoint
from wam.errors import ConfigError, WamError


@dataclass
class OptimConfig:
    """Optimisation and bookkeeping of a training run."""

    steps: int = 3000
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup: int = 100
    min_lr: float = 0.1  # final learning rate as a fraction of lr (cosine decay)
    grad_clip: float = 1.0
    ema: float = 0.999
    bf16: bool = True  # autocast matmuls to bfloat16 on the CPU (~2x here)
    seed: int = 0
    log_every: int = 10
    val_every: int = 250
    ckpt_every: int = 500
    keep: int = 2  # checkpoints kept

    def check(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("optim.steps and optim.batch_size must be >= 1")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"optim.ema must be in [0, 1), got {self.ema}")


class EMA:
    """Exponential moving average of the trainable parameters (decay warms up from 0)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.shadow = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for n, p in model.named_parameters():
            if n in self.shadow:
                self.shadow[n].lerp_(p.detach(), 1 - d)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """Temporarily load the EMA weights into `model`."""
        params = dict(model.named_parameters())
        backup = {n: params[n].detach().clone() for n in self.shadow}
        with torch.no_grad():
            for n, v in self.shadow.items():
                params[n].copy_(v)
        try:
            yield
        finally:
            with torch.no_grad():
                for n, v in backup.items():
                    params[n].copy_(v)


class EpochSampler(Sampler[int]):
    """Shuffled indices, a new permutation each epoch, fixed by (seed, epoch); starts mid-epoch."""

    def __init__(self, size: int, batch_size: int, seed: int, start_step: int = 0):
        self.size, self.batch_size, self.seed, self.start_step = size, batch_size, seed, start_step
        self.batches_per_epoch = max(size // batch_size, 1)

    def __iter__(self) -> Iterator[int]:
        epoch, offset = divmod(self.start_step, self.batches_per_epoch)
        while True:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            order = torch.randperm(self.size, generator=g)[: self.batches_per_epoch * self.batch_size]
            yield from order[offset * self.batch_size:].tolist()
            epoch, offset = epoch + 1, 0


def lr_factor(step: int, cfg: OptimConfig) -> float:
    """Linear warm-up, then cosine decay to `min_lr`."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = min((step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1), 1.0)
    return cfg.min_lr + (1 - cfg.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


class CsvLog:
    """log.csv of a run; rows past a resumed step are dropped so curves never double back."""

    def __init__(self, path: Path, resume_step: int):
        self.path = path
        self.rows: list[dict] = []
        if path.exists() and resume_step > 0:
            with path.open() as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self._write()

    def add(self, row: dict) -> None:
        self.rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    def _write(self) -> None:
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys or ["step"])
            writer.writeheader()
            writer.writerows(self.rows)

    def flush(self) -> None:
        self._write()
        plot_log(self.path)


def read_log(path: Path) -> list[dict]:
    """The rows of a run's log.csv as dicts of strings (empty when there is none yet)."""
    if not path.is_file():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def log_series(rows: list[dict], key: str) -> list[tuple[int, float]]:
    """(step, value) of one column, over the rows that have it (validation loss is logged sparsely)."""
    return [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]


def plot_log(path: Path) -> None:
    """curves.png beside log.csv: training and validation loss (log scale) and learning rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(path)
    if not rows:
        return
    series = lambda key: log_series(rows, key)  # noqa: E731
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key in ("loss", "val_loss"):
        if series(key):
            a.plot(*zip(*series(key)), label=key, marker="o" if key == "val_loss" else None, ms=3)
    a.set_yscale("log"), a.set_xlabel("step"), a.legend(), a.grid(alpha=0.3)
    if series("lr"):
        b.plot(*zip(*series("lr")))
    b.set_xlabel("step"), b.set_ylabel("learning rate"), b.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path.with_name("curves.png"))
    plt.close(fig)


def train(model: nn.Module, train_set: Dataset, collate: Callable, cfg: OptimConfig, run_dir: str | Path,
          kind: str, run_config: Any, val_batches: list[dict] | None = None, progress: bool = True,
          stop_at: int | None = None) -> dict:
    """Train `model` on `train_set` for `cfg.steps` steps, resuming from `run_dir` if it has a checkpoint.

    `stop_at` ends the loop early at that step (after saving), as if killed: used by tests.
    Returns the last logged metrics.
    """
    cfg.check()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    ema = EMA(model, cfg.ema)
    step = _resume(run_dir, kind, model, ema, optimizer, scheduler, cfg)
    sampler = EpochSampler(len(train_set), cfg.batch_size, cfg.seed, start_step=step)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate,
                        generator=torch.Generator().manual_seed(cfg.seed))  # not the global RNG: resume stays exact
    log = CsvLog(run_dir / "log.csv", step)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if cfg.bf16 else nullcontext()
    bar = tqdm(total=cfg.steps, initial=step, desc=kind, disable=not progress, dynamic_ncols=True)
    last: dict = {}
    save = lambda: _save(run_dir, step, kind, model, ema, optimizer, scheduler, run_config, cfg, last)  # noqa: E731
    tick, seen = time.perf_counter(), 0
    try:
        for batch in loader:
            if step >= cfg.steps or (stop_at is not None and step >= stop_at):
                break
            model.train()
            with autocast:
                loss, metrics = model.loss(batch)
            if not torch.isfinite(loss):
                last_good = (f"the last good checkpoint is in {run_dir / 'checkpoints'}"
                             if (run_dir / "checkpoints" / "last").exists() else "no checkpoint was saved before it")
                raise WamError(f"loss is {loss.item()} at step {step}: training stopped, nothing saved ({last_good}); "
                               "NaN/inf in the data? `wam data check DATASET` names file, column and rows; "
                               "otherwise try a lower optim.lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            ema.update(model, step)
            step += 1
            seen += cfg.batch_size
            if step % cfg.log_every == 0 or step == cfg.steps:
                rate = seen / (time.perf_counter() - tick)
                tick, seen = time.perf_counter(), 0
                last = {"step": step, "loss": loss.item(), "lr": scheduler.get_last_lr()[0],
                        "grad_norm": float(grad_norm), "samples_per_s": rate,
                        **{k: float(v) for k, v in metrics.items()}}
                if val_batches and (step % cfg.val_every == 0 or step == cfg.steps):
                    last["val_loss"] = validation_loss(model, ema, val_batches, cfg)
                log.add(last)
                bar.set_postfix(loss=f"{last['loss']:.4f}", sps=f"{rate:.1f}")
            bar.update(1)
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                log.flush()
                save()
    except KeyboardInterrupt:
        log.flush()
        save()
        raise
    finally:
        bar.close()
    log.flush()
    return last


@torch.no_grad()
def validation_loss(model: nn.Module, ema: EMA, batches: list[dict], cfg: OptimConfig) -> float:
    """Mean loss of the EMA weights over fixed batches, with a fixed noise generator."""
    model.eval()
    generator = torch.Generator().manual_seed(1234)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if cfg.bf16 else nullcontext()
    with ema.applied(model), autocast:
        losses = [model.loss(b, generator=generator)[0].item() for b in batches]
    return sum(losses) / len(losses)


def _save(run_dir, step, kind, model, ema, optimizer, scheduler, run_config, cfg, last) -> None:
    opt = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
           "torch_rng": torch.get_rng_state()}
    save_checkpoint(run_dir, step, kind, dict(model.state_dict()), ema.shadow, opt,
                    {"metrics": last}, run_config, keep=cfg.keep)


def _resume(run_dir: Path, kind: str, model, ema, optimizer, scheduler, cfg: OptimConfig) -> int:
    if not (run_dir / "checkpoints" / "last").exists():
        torch.manual_seed(cfg.seed)
        return 0
    ckpt = load_checkpoint(run_dir, kind)
    model.load_state_dict(ckpt.model)
    if ckpt.ema is not None:
        ema.shadow = {k: v.clone() for k, v in ckpt.ema.items()}
    opt = ckpt.optimizer_state()
    optimizer.load_state_dict(opt["optimizer"])
    scheduler.load_state_dict(opt["scheduler"])
    torch.set_rng_state(opt["torch_rng"])
    return int(ckpt.state["step"])
