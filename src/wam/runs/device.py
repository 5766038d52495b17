"""The device a command runs on, from `--device=auto|cpu|cuda|cuda:N|mps`.

    device = resolve_device("auto")      # cuda if there is one, else mps, else cpu
    model.to(device); batch = to_device(batch, device)

A device that is not there (`cuda` on a machine without one, `cuda:3` with two GPUs, `mps` off
a Mac) and a name that is no device are refused with one line (`ConfigError`, exit status 2).
Checkpoints hold CPU tensors (wam.checkpoint moves them there when saving), so a checkpoint saved
on a GPU loads anywhere: build on the CPU, load the weights, then move the model.
"""

from __future__ import annotations

import re

import torch

from wam.errors import ConfigError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def check_device(spec: str, flag: str = "--device") -> str:
    """`spec` if it names a device wam knows (it may still be absent here), else a ConfigError."""
    if not isinstance(spec, str) or not _PATTERN.match(spec.strip().lower()):
        raise ConfigError(f"{flag}: {spec!r} is not a device; choose {DEVICE_CHOICES}")
    return spec.strip().lower()


def resolve_device(spec: str = "auto", flag: str = "--device") -> torch.device:
    """The torch device `spec` names, checked to exist on this machine."""
    spec = check_device(spec, flag)
    if spec == "auto":
        if torch.cuda.is_available():  # the current device: under torchrun / accelerate, this process's own GPU
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "this torch was built without CUDA" if torch.version.cuda is None else "torch sees no CUDA device"
            raise ConfigError(f"{flag}={spec}: no CUDA device here ({why}, torch {torch.__version__}); "
                              f"use --device=cpu or --device=auto")
        if ":" not in spec:  # the current device: under torchrun / accelerate, this process's own GPU
            return torch.device("cuda", torch.cuda.current_device())
        index = int(spec.split(":")[1])
        if index >= torch.cuda.device_count():
            raise ConfigError(f"{flag}={spec}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                              f"numbered 0..{torch.cuda.device_count() - 1}")
        return torch.device("cuda", index)
    if spec == "mps" and not _mps_available():
        raise ConfigError(f"{flag}=mps: no Apple MPS device here; use --device=cpu or --device=auto")
    return torch.device(spec)


def describe_device(device: torch.device) -> str:
    """One line for a run's log: the device and what it is."""
    if device.type == "cuda":
        return f"device: {device} ({torch.cuda.get_device_name(device)})"
    return f"device: {device}"


def to_device(batch, device: torch.device):
    """A batch (dict / list / tuple of tensors and other values) with its tensors on `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in batch):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def module_device(module: torch.nn.Module) -> torch.device:
    """Where a module's parameters (or buffers) live; the CPU for a module with neither."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")
