"""Many processes, one training run: join the launcher's process group and wrap the model in an engine.

`wam pretrain` and `wam train` run unchanged under a launcher that starts one process per device:

    torchrun --nproc_per_node=2 -m wam train --optim.batch_size=64 ...          # one node, 2 GPUs
    accelerate launch --multi_gpu --num_processes 2 -m wam train ...            # the same through accelerate
    OMP_NUM_THREADS=1 torchrun --nproc_per_node=2 -m wam train ...              # CPU, gloo (tests)

The launcher sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT (under mpirun, as
`accelerate launch --cpu --mpirun_hostfile` uses, Open MPI's / MPICH's own names stand for the
first three); `setup()` reads them and joins the process group (nccl on CUDA, gloo on the CPU), or
returns a single-process `Dist` without touching torch.distributed when there is no launcher.
Recipes (one node, several nodes): docs/distributed.md. The engine is PyTorch's own:
`DistributedDataParallel` (the default) or FSDP2's `fully_shard` (`--optim.distributed=fsdp`),
around `LossForward`, which exposes the model's `loss` as `forward` (the engines hook `forward`).
"""

from __future__ import annotations

import atexit
import os
import sys
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from wam.errors import ConfigError, WamError

ENGINES = ("ddp", "fsdp")
# rank 0 may prepare alone for a long time (decode frames, train a tokenizer) while the others wait
WAIT = timedelta(hours=3)


@dataclass(frozen=True)
class Dist:
    """Where this process stands in the run."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str = ""  # "nccl", "gloo", or "" for a single process (no process group)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints, logs, plots and writes checkpoints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def describe(self, engine: str) -> str:
        """What the run's log says: "world size 2 (gloo, ddp)", or "world size 1"."""
        return f"world size {self.world_size}" + (f" ({self.backend}, {engine})" if self.active else "")


_current: Dist | None = None
# (world size, rank, local rank) as torchrun, Open MPI, MPICH / Intel MPI and MVAPICH name them
LAUNCHER_VARS = (("WORLD_SIZE", "RANK", "LOCAL_RANK"),
                 ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"),
                 ("PMI_SIZE", "PMI_RANK", "MPI_LOCALRANKID"),
                 ("MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_LOCAL_RANK"))


def _wants_cpu() -> bool:
    """CPU training although CUDA is there: `accelerate launch --cpu`, or no CUDA at all."""
    return not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")


def backend_for(device: torch.device | None) -> str:
    """gloo for CPU processes (no CUDA, `accelerate launch --cpu`, or a run whose device is not a GPU),
    else nccl. `device` None: decided by the machine alone (nccl wherever CUDA is)."""
    if _wants_cpu() or (device is not None and device.type != "cuda"):
        return "gloo"
    return "nccl"


def setup(device: torch.device | None = None) -> Dist:
    """Join the launcher's process group once (later calls return the same `Dist`); `device` is the run's
    (the first call decides: the entry points pass theirs). Ranks other than 0 print nothing (their
    stdout goes to /dev/null; errors still reach stderr)."""
    global _current
    if _current is not None:
        return _current
    names = next((n for n in LAUNCHER_VARS if n[0] in os.environ), LAUNCHER_VARS[0])
    world = int(os.environ.get(names[0], "1"))
    if world <= 1:
        if "MASTER_ADDR" in os.environ and os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true"):
            print("wam: one process only: `accelerate launch --cpu` starts several CPU processes only through mpirun "
                  "(--mpirun_hostfile); use torchrun or `accelerate launch --multi_gpu` for more", file=sys.stderr)
        _current = Dist()
        return _current
    missing = [k for k in (*names[1:], "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise WamError(f"{names[0]}={world} but {', '.join(missing)} not set: start multi-process runs with "
                       f"torchrun or accelerate launch")
    rank, local = int(os.environ[names[1]]), int(os.environ[names[2]])
    backend = backend_for(device)
    if not dist.is_initialized():
        if backend == "nccl":
            if local >= torch.cuda.device_count():
                raise WamError(f"{names[2]}={local} but this machine has {torch.cuda.device_count()} GPU(s): start "
                               f"one process a GPU, or train on the CPU (--device=cpu: gloo processes)")
            torch.cuda.set_device(local)  # "cuda" now means this process's GPU
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=WAIT)
    _current = Dist(rank, local, world, backend)
    atexit.register(teardown)
    if rank != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    return _current


def teardown() -> None:
    """Leave the process group (at the end of a run; a no-op for a single process)."""
    global _current
    if dist.is_initialized():
        dist.destroy_process_group()
    _current = None


def barrier() -> None:
    if setup().active:
        dist.barrier()


def wait_for_rank_zero() -> None:
    """Ranks other than 0 wait here until rank 0 calls `rank_zero_done()`: what rank 0 does in between
    (decode frames into the cache, train a tokenizer, embed instructions) the others then read."""
    if not setup().is_main:
        barrier()


def rank_zero_done() -> None:
    if setup().is_main:
        barrier()


def mean(values: Tensor) -> Tensor:
    """The mean of `values` over all ranks (the tensor itself for a single process)."""
    if not setup().active:
        return values
    total = values.detach().clone()
    dist.all_reduce(total)
    return total / setup().world_size


class LossForward(nn.Module):
    """A model's `loss(batch, generator)` as `forward`, where DDP and FSDP hook in."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        return self.model.loss(batch, generator=generator)


def engine(model: nn.Module, how: str = "ddp", optimizer: torch.optim.Optimizer | None = None,
           shadow: dict[str, Tensor] | None = None) -> nn.Module:
    """`model.loss` as a module whose backward all-reduces gradients across ranks (plain for a single process).

    FSDP replaces the model's parameters by shards: `optimizer` is pointed at them (its state sharded
    alike) and the EMA `shadow` tensors are sharded in place, so both can be loaded beforehand from
    an ordinary (full) checkpoint."""
    if how not in ENGINES:
        raise ConfigError(f"unknown optim.distributed '{how}'; choose one of {', '.join(ENGINES)}")
    step, ctx = LossForward(model), setup()
    if not ctx.active:
        return step
    with torch.no_grad():  # every rank starts from rank 0's weights (ranks may have built theirs from other RNG states)
        for t in [*model.parameters(), *model.buffers(), *(shadow or {}).values()]:
            dist.broadcast(t, 0)
    if how == "fsdp":
        return _fully_shard(model, step, optimizer, shadow or {})
    device_ids = [ctx.local_rank] if ctx.backend == "nccl" else None
    # find_unused_parameters: some groups (text dropout's null token, video-only batches) skip parameters
    return DistributedDataParallel(step, device_ids=device_ids, find_unused_parameters=True)


def _fully_shard(model: nn.Module, step: LossForward, optimizer: torch.optim.Optimizer | None,
                 shadow: dict[str, Tensor]) -> nn.Module:
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import distribute_tensor

    before = dict(model.named_parameters())
    for block in _outer_blocks(model):
        fully_shard(block)  # one all-gather group per block of a stack (transformer layers)
    wrapped = fully_shard(step)
    after = dict(model.named_parameters())
    shard = lambda full, like: distribute_tensor(full.to(like.device), like.device_mesh, like.placements)  # noqa: E731
    for name in shadow:
        shadow[name] = shard(shadow[name], after[name])
    if optimizer is not None:
        new = {id(before[n]): after[n] for n in before}
        for group in optimizer.param_groups:
            group["params"] = [new[id(p)] for p in group["params"]]
        optimizer.state = defaultdict(dict, {
            new[id(p)]: {k: shard(v, new[id(p)]) if v.shape == p.shape else v for k, v in st.items()}
            for p, st in optimizer.state.items()})
    return wrapped


def _outer_blocks(model: nn.Module) -> list[nn.Module]:
    """The elements of every ModuleList not inside another chosen block (FSDP groups must not nest top-down)."""
    chosen: list[str] = []
    for name, stack in model.named_modules():
        if isinstance(stack, nn.ModuleList) and not any(name.startswith(c + ".") for c in chosen):
            chosen += [f"{name}.{i}" for i in range(len(stack))]
    modules = dict(model.named_modules())
    return [modules[c] for c in chosen]


def full(tensors):
    """A tensor, or a state dict, with every shard gathered into its full tensor (on all ranks: a
    collective under FSDP); nested dicts (an optimizer's state) are gathered too. Unchanged without FSDP."""
    from torch.distributed.tensor import DTensor

    def gather(v):
        if isinstance(v, dict):
            return {k: gather(x) for k, x in v.items()}
        return v.full_tensor() if isinstance(v, DTensor) else v

    return gather(tensors)


def warn_if_diverged(model: nn.Module, step: int) -> list[str]:
    """A collective: each rank whose parameters differ from rank 0's names them on stderr (and returns
    them). DDP keeps ranks equal only through gradients: a model that changes its weights in forward
    from its own micro-batch (a codebook restart) would drift unseen. Nothing to do for one process or FSDP."""
    if not setup().active or any(hasattr(p, "full_tensor") for p in model.parameters()):
        return []
    names, params = zip(*model.named_parameters())
    sums = torch.stack([p.detach().double().sum() + p.detach().double().abs().sum() for p in params])
    ours = sums.clone()
    dist.broadcast(sums, 0)
    drift = [n for n, a, b in zip(names, ours.tolist(), sums.tolist()) if a != b]
    if drift:
        print(f"warning: rank {setup().rank} holds other values than rank 0 in {', '.join(drift)} at step {step} "
              f"(the model changes them in forward); rank 0's are saved", file=sys.stderr)
    return drift


@contextmanager
def local_gradients(wrapped: nn.Module, local: bool) -> Iterator[None]:
    """While `local`, backward accumulates gradients without all-reducing them (all micro-batches of a
    step but the last); the last one's backward all-reduces the sum."""
    if not local:
        yield
    elif isinstance(wrapped, DistributedDataParallel):
        with wrapped.no_sync():
            yield
    elif hasattr(wrapped, "set_requires_gradient_sync"):  # FSDP2
        wrapped.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            wrapped.set_requires_gradient_sync(True)
    else:
        yield
