"""The training loop shared by `wam pretrain` and `wam train`, readable top to bottom.

A model only has to provide `loss(batch, generator=None) -> (loss, metrics)`. The loop adds:
AdamW with linear warm-up and cosine decay, gradient clipping, autocast to the precision chosen
for the device (`optim.precision`, wam.runs.precision), EMA weights, a
held-out validation loss (EMA weights, fixed noise), a progress bar with loss and samples/s, a CSV
log with a PNG of its curves, and checkpoints every `ckpt_every` steps (and on Ctrl-C).

Exact resume: the data order is a pure function of (seed, step) (`EpochSampler`), and so is the
flow-matching noise (`noise_generator`); the checkpoint holds the optimizer, scheduler and RNG
states, so a run killed and resumed produces the same weights as one that never stopped. A
non-finite loss stops the run before anything is saved, so the last good checkpoint is never
overwritten by a broken one.

Many processes (`torchrun`, `accelerate launch`; see wam.runs.distributed). `optim.batch_size` is
the GLOBAL batch of a step. It is cut into micro-batches of `optim.micro_batch` samples (default:
batch_size / world size, one per process); micro-batch m of step s is the m-th slice of the global
batch the sampler draws for s, and its noise comes from a generator seeded by (seed, s, m). Process
r runs micro-batches r*A .. r*A+A-1 (A = accumulation steps), each loss scaled by 1/A; the engine
(DDP by default, FSDP2 with `optim.distributed=fsdp`) all-reduces the mean gradient on the last
one. So the micro-batch, not the process, is the unit: 2 processes with one micro-batch each
compute what 1 process accumulating the same 2 micro-batches computes (the same data, the same
noise, the same averaged gradient; with DDP equal to the bit), and a run can resume under another
world size with the same `micro_batch`. The logged loss and samples/s are global; only rank 0
prints, logs, plots and writes checkpoints.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from wam.checkpoint import latest_intact, save_checkpoint, step_folders
from wam.config import Retired
from wam.errors import ConfigError, WamError
from wam.runs import distributed, threads
from wam.runs.device import describe_device, resolve_device, to_device
from wam.runs.precision import Precision, check_precision, choose_precision
from wam.runs.train_log import CsvLog


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
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (autocast; auto measures, see wam.runs.precision)
    seed: int = 0
    log_every: int = 10
    val_every: int = 250
    ckpt_every: int = 500
    keep: int = 2  # checkpoints kept
    micro_batch: int = 0  # samples a process runs at once; 0 = batch_size / world size (no accumulation)
    distributed: str = "ddp"  # engine under torchrun / accelerate launch: ddp | fsdp
    world_size: int = 1  # recorded: the processes the run trained with (set by the launcher, not by hand)

    # `bf16: true` was the default, rarely a choice: read as auto (bf16 where measured faster); false as fp32
    RETIRED: ClassVar[dict[str, Retired]] = {"bf16": Retired(
        bool, "precision", lambda on: "auto" if on else "fp32",
        "read as optim.precision=auto when true (bf16 only where it is measured faster), fp32 when false")}

    def check(self) -> None:
        check_precision(self.precision)
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("optim.steps and optim.batch_size must be >= 1")
        for key in ("log_every", "val_every", "ckpt_every"):  # the last step always logs, validates and saves
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"optim.{key} must be an integer >= 1 (the last step always counts), got {value!r}")
        if self.micro_batch < 0:
            raise ConfigError(f"optim.micro_batch must be >= 0 (0 = batch_size / world size), got {self.micro_batch}")
        if self.distributed not in distributed.ENGINES:
            raise ConfigError(f"unknown optim.distributed '{self.distributed}'; choose one of "
                              f"{', '.join(distributed.ENGINES)}")
        if not 0 <= self.ema < 1:
            raise ConfigError(f"optim.ema must be in [0, 1), got {self.ema}")
        self.accumulation(self.world_size)

    def accumulation(self, world_size: int) -> tuple[int, int]:
        """(micro-batch size, micro-batches per process per step) for `world_size` processes."""
        micro = self.micro_batch or self.batch_size // world_size
        if micro < 1 or self.batch_size % (micro * world_size):
            raise ConfigError(f"optim.batch_size={self.batch_size} (the global batch) does not split into "
                              f"{world_size} process(es) x micro-batches of {micro}: choose a batch size that does, "
                              f"or set optim.micro_batch")
        return micro, self.batch_size // (micro * world_size)


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
    """Shuffled indices, a new permutation each epoch, fixed by (seed, epoch); starts mid-epoch.
    Each step's global batch of `batch_size` is cut into `world_size` equal slices: rank r yields slice r."""

    def __init__(self, size: int, batch_size: int, seed: int, start_step: int = 0, rank: int = 0,
                 world_size: int = 1):
        self.size, self.batch_size, self.seed, self.start_step = size, batch_size, seed, start_step
        self.batches_per_epoch = max(size // batch_size, 1)
        self.share = batch_size // world_size
        self.first = rank * self.share

    def __iter__(self) -> Iterator[int]:
        epoch, offset = divmod(self.start_step, self.batches_per_epoch)
        need = self.batches_per_epoch * self.batch_size
        while True:
            g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            order = torch.cat([torch.randperm(self.size, generator=g) for _ in range(-(-need // self.size))])[:need]
            for b in range(offset, self.batches_per_epoch):
                start = b * self.batch_size + self.first
                yield from order[start:start + self.share].tolist()
            epoch, offset = epoch + 1, 0


def noise_generator(seed: int, step: int, micro: int) -> torch.Generator:
    """The generator of micro-batch `micro` (its index in the global batch) at `step`: a pure function
    of the three, so the noise does not depend on how many processes share the batch."""
    words = np.random.SeedSequence([seed % (1 << 64), step, micro]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(words[0]) << 32 | int(words[1]))


def lr_factor(step: int, cfg: OptimConfig) -> float:
    """Linear warm-up, then cosine decay to `min_lr`."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = min((step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1), 1.0)
    return cfg.min_lr + (1 - cfg.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def train(model: nn.Module, train_set: Dataset, collate: Callable, cfg: OptimConfig, run_dir: str | Path,
          kind: str, run_config: Any, val_batches: list[dict] | None = None, progress: bool = True,
          stop_at: int | None = None, device: str | torch.device = "cpu") -> dict:
    """Train `model` on `train_set` for `cfg.steps` steps, resuming from `run_dir` if it has a checkpoint.

    `device` is a torch device or a `--device` name; batches are moved there, checkpoints hold CPU
    tensors. `stop_at` ends the loop early at that step (after saving), as if killed: used by tests.
    Returns the last logged metrics.
    """
    device = resolve_device(device) if isinstance(device, str) else device
    ctx = distributed.setup(device)
    cfg.world_size = ctx.world_size
    cfg.check()
    micro, accumulate = cfg.accumulation(ctx.world_size)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    prec = runtime_report(run_dir, device, cfg.precision) if ctx.is_main else choose_precision(cfg.precision, device)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    ema = EMA(model, cfg.ema)
    step = _resume(run_dir, kind, model, ema, optimizer, scheduler, cfg)
    ema.shadow = {k: v.to(device) for k, v in ema.shadow.items()}  # a resumed shadow is loaded on the CPU
    scaler = prec.grad_scaler()
    forward = distributed.engine(model, cfg.distributed, optimizer, ema.shadow)  # its backward all-reduces gradients
    params = [p for p in model.parameters() if p.requires_grad]  # FSDP: the shards now
    sampler = EpochSampler(len(train_set), cfg.batch_size, cfg.seed, step, ctx.rank, ctx.world_size)
    loader = DataLoader(train_set, batch_size=micro, sampler=sampler, collate_fn=collate,
                        generator=torch.Generator().manual_seed(cfg.seed))  # not the global RNG: resume stays exact
    batches = (to_device(b, device) for b in loader)
    log = CsvLog(run_dir / "log.csv", step, write=ctx.is_main)
    if ctx.is_main:
        print(f"{kind}: {ctx.describe(cfg.distributed)}, global batch {cfg.batch_size} = {ctx.world_size} process(es) "
              f"x {accumulate} micro-batch(es) x {micro}")
    bar = tqdm(total=cfg.steps, initial=step, desc=kind, disable=not (progress and ctx.is_main), dynamic_ncols=True)
    last: dict = {}
    save = lambda: _save(run_dir, step, kind, model, ema, optimizer, scheduler, run_config, cfg, last)  # noqa: E731
    tick, seen = time.perf_counter(), 0
    try:
        while step < cfg.steps and (stop_at is None or step < stop_at):
            forward.train()
            optimizer.zero_grad(set_to_none=True)
            loss, metrics = step_gradients(forward, batches, accumulate, prec, scaler, cfg.seed, step, ctx.rank)
            if not torch.isfinite(loss):
                last_good = (f"the last good checkpoint is in {run_dir / 'checkpoints'}"
                             if (run_dir / "checkpoints" / "last").exists() else "no checkpoint was saved before it")
                raise WamError(f"loss is {loss.item()} at step {step}: training stopped, nothing saved ({last_good}); "
                               "NaN/inf in the data? `wam data check DATASET` names file, column and rows; "
                               "otherwise try a lower optim.lr")
            grad_norm = _optimizer_step(params, optimizer, scaler, cfg.grad_clip)
            scheduler.step()
            ema.update(model, step)
            step += 1
            seen += cfg.batch_size
            if step % cfg.log_every == 0 or step == cfg.steps:
                rate = seen / (time.perf_counter() - tick)
                tick, seen = time.perf_counter(), 0
                last = {"step": step, "loss": loss.item(), "lr": scheduler.get_last_lr()[0],
                        "grad_norm": float(distributed.full(grad_norm)), "samples_per_s": rate,
                        **{k: float(v) for k, v in metrics.items()}}
                if val_batches and (step % cfg.val_every == 0 or step == cfg.steps):
                    last.update(validation_metrics(model, ema, val_batches, prec, device, forward))
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


def step_gradients(forward: nn.Module, batches: Iterator[dict], accumulate: int, prec: Precision, scaler,
                   seed: int, step: int, rank: int) -> tuple[torch.Tensor, dict]:
    """Backward over this process's `accumulate` micro-batches of `step` (gradients all-reduced on the
    last; through the fp16 loss scaler when there is one); returns the loss and metrics averaged over
    the global batch, the same on every process."""
    loss_sum, sums = 0.0, {}
    for i in range(accumulate):
        micro = rank * accumulate + i  # index in the global batch: fixes the noise
        with distributed.local_gradients(forward, i < accumulate - 1):
            with prec.autocast():
                loss, metrics = forward(next(batches), noise_generator(seed, step, micro))
            part = loss / accumulate
            (part if scaler is None else scaler.scale(part)).backward()
        loss_sum = loss_sum + loss.detach().float() / accumulate
        for k, v in metrics.items():
            sums[k] = sums.get(k, 0.0) + torch.as_tensor(v, device=loss.device).detach().float() / accumulate
    keys = sorted(sums)
    means = distributed.mean(torch.stack([loss_sum, *(sums[k] for k in keys)]))
    return means[0], dict(zip(keys, means[1:]))


@torch.no_grad()
def validation_metrics(model: nn.Module, ema: EMA, batches: list[dict], prec: Precision,
                       device: torch.device | str = "cpu", forward: Callable | None = None) -> dict[str, float]:
    """`val_loss` (the training loss of the EMA weights) and `val_<metric>` for each term the loss reports
    (e.g. val_action_loss, val_video_loss: a WAM's val_loss sums them, so overfitting of its actions shows only
    in the first), means over fixed batches with a fixed noise generator (on the CPU: the same noise on every
    device). Every process computes it, through `forward` (the engine) when given: its forward may need all."""
    model.eval()
    generator = torch.Generator().manual_seed(1234)
    sums: dict[str, float] = {}
    with ema.applied(model), prec.autocast():
        for b in batches:
            loss, metrics = (forward or model.loss)(to_device(b, device), generator)
            for k, v in {"loss": loss, **metrics}.items():
                sums[f"val_{k}"] = sums.get(f"val_{k}", 0.0) + float(v)
    return {k: v / len(batches) for k, v in sums.items()}


def _optimizer_step(params: list, optimizer, scaler, clip: float) -> torch.Tensor:
    """Clip and step (unscaling through the fp16 loss scaler when there is one); the gradient norm."""
    if scaler is not None:
        scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()
    return grad_norm


_REPORTED: set[tuple[str, str]] = set()


def runtime_report(run_dir: Path, device: torch.device, precision: str) -> Precision:
    """Choose the precision for `device`, say what runs where and why (printed, and in runtime.json)."""
    prec = choose_precision(precision, device)
    if (str(run_dir), str(device)) in _REPORTED:
        return prec
    _REPORTED.add((str(run_dir), str(device)))
    print("\n".join([describe_device(device), prec.line(), threads.describe()]))
    info = {"device": str(device), "precision": prec.name, "why": prec.reason, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cores": threads.cores()}
    if earlier := _earlier_runtimes(run_dir / "runtime.json", info):
        info["earlier"] = earlier
    (run_dir / "runtime.json").write_text(json.dumps(info, indent=1))
    return prec


RUNTIME_KIND = ("device", "precision", "torch")  # what makes two stretches of one run train alike


def _earlier_runtimes(path: Path, now: dict) -> list[dict]:
    """The kinds (RUNTIME_KIND) a run resumed into this one trained in before, when any differs from `now`: a run
    resumed on another machine keeps the record of the arithmetic its first steps had."""
    try:
        before = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(before, dict):
        return []
    earlier = [e for e in before.get("earlier", []) if isinstance(e, dict)]
    last = {k: before.get(k) for k in RUNTIME_KIND}
    return earlier + ([last] if last != {k: now[k] for k in RUNTIME_KIND} and last not in earlier else [])


def _save(run_dir, step, kind, model, ema, optimizer, scheduler, run_config, cfg, last) -> None:
    """Called on every rank (FSDP gathers its shards); only rank 0 writes."""
    state = distributed.full({"model": dict(model.state_dict()), "ema": ema.shadow,
                              "optimizer": optimizer.state_dict()})
    distributed.warn_if_diverged(model, step)
    if not distributed.setup().is_main:
        return
    opt = {"optimizer": state["optimizer"], "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state()}
    save_checkpoint(run_dir, step, kind, state["model"], state["ema"], opt,
                    {"metrics": last}, run_config, keep=cfg.keep)


def _resume(run_dir: Path, kind: str, model, ema, optimizer, scheduler, cfg: OptimConfig) -> int:
    """Load the newest intact checkpoint of `run_dir` (skipping damaged ones, with a warning) and return
    its step; 0 and the seed's RNG state for a fresh run."""
    if not step_folders(run_dir / "checkpoints"):
        torch.manual_seed(cfg.seed)
        return 0
    ckpt, damaged = latest_intact(run_dir, kind)
    for line in damaged:
        print(f"warning: skipping a damaged checkpoint: {line}", file=sys.stderr)
    print(f"resuming from step {ckpt.state['step']} (checkpoint {ckpt.path})", file=sys.stderr)
    model.load_state_dict(ckpt.model)
    if ckpt.ema is not None:
        ema.shadow = {k: v.clone() for k, v in ckpt.ema.items()}
    opt = ckpt.optimizer_state()
    optimizer.load_state_dict(opt["optimizer"])
    scheduler.load_state_dict(opt["scheduler"])
    torch.set_rng_state(opt["torch_rng"])
    return int(ckpt.state["step"])
