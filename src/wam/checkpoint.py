"""Checkpoints: a directory a run can be evaluated or resumed from, written atomically.

    <run>/checkpoints/step_000500/
        model.safetensors     weights being trained
        ema.safetensors       their exponential moving average (what evaluation uses)
        optimizer.pt          optimizer + scheduler state and RNG states (exact resume)
        state.json            kind, step, data position, metrics at save time
        config.yaml           the resolved run config
    <run>/checkpoints/last    the name of the newest complete checkpoint

A checkpoint is written under a temporary name and renamed when complete, and `last` is updated
after that, so a kill during a save leaves the previous checkpoint as `last`. `load_state` checks
the `kind` so that a checkpoint of another kind of model is refused by name.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from wam.config import save_config
from wam.errors import WamError


@dataclass
class Checkpoint:
    """A loaded checkpoint."""

    path: Path
    state: dict
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None

    def optimizer_state(self) -> dict:
        return torch.load(self.path / "optimizer.pt", weights_only=False, map_location="cpu")  # GPU-saved opens anywhere


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def save_checkpoint(run_dir: str | Path, step: int, kind: str, model: dict[str, torch.Tensor],
                    ema: dict[str, torch.Tensor] | None, optimizer: dict | None, state: dict, config: Any,
                    keep: int = 3) -> Path:
    """Write checkpoint `step` of `run_dir` and point `last` at it; keep the newest `keep`."""
    for name, value in model.items():
        if not torch.isfinite(value).all():
            raise WamError(f"refusing to save step {step}: parameter '{name}' is not finite")
    folder = Path(run_dir) / "checkpoints"
    final = folder / f"step_{step:06d}"
    tmp = folder / f".step_{step:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(_contiguous(model), tmp / "model.safetensors")
    if ema is not None:
        save_file(_contiguous(ema), tmp / "ema.safetensors")
    if optimizer is not None:
        torch.save(optimizer, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"kind": kind, "step": step, **state}, indent=2))
    save_config(config, tmp / "config.yaml")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    pointer = folder / "last.tmp"
    pointer.write_text(final.name)
    os.replace(pointer, folder / "last")
    for old in sorted(folder.glob("step_*"))[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory from a run directory, a `checkpoints/` folder or a step folder."""
    path = Path(path)
    for candidate in (path, path / "checkpoints"):
        if (candidate / "last").is_file():
            return candidate / (candidate / "last").read_text().strip()
    if (path / "state.json").is_file():
        return path
    raise WamError(f"no checkpoint at {path} (expected a run folder, or a folder with state.json)")


def load_checkpoint(path: str | Path, kind: str | None = None) -> Checkpoint:
    """Load a checkpoint, refusing one of another `kind` with a message that says which."""
    folder = resolve_checkpoint(path)
    state_file = folder / "state.json"
    if not state_file.is_file():
        raise WamError(f"{folder} is not a complete checkpoint (no state.json)")
    state = json.loads(state_file.read_text())
    if kind is not None and state.get("kind") != kind:
        raise WamError(f"{folder} is a '{state.get('kind')}' checkpoint, expected '{kind}'")
    model = load_file(folder / "model.safetensors")
    ema = load_file(folder / "ema.safetensors") if (folder / "ema.safetensors").exists() else None
    return Checkpoint(folder, state, model, ema)
