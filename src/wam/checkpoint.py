"""Checkpoints: a directory a run can be evaluated or resumed from, written atomically and verified.

    <run>/checkpoints/step_000500/
        model.safetensors     weights being trained
        ema.safetensors       their exponential moving average (what evaluation uses)
        optimizer.pt          optimizer + scheduler state and RNG states (exact resume)
        state.json            kind, step, data position, metrics at save time
        config.yaml           the resolved run config
        manifest.json         size and sha256 of every file above
    <run>/checkpoints/last    the name of the newest complete checkpoint

A checkpoint is written under a temporary name, its files flushed to disk (fsync), its manifest
written last, and the folder renamed when complete; `last` is updated after that, so a kill during a
save leaves the previous checkpoint as `last`. Loading checks the files it reads against the manifest
(sizes always, hashes too), so a truncated, zero-byte, missing or bit-flipped file is refused with one
line naming it (`DamagedCheckpoint`, exit 2) instead of a traceback or silently wrong weights.
`latest_intact` (what resuming uses) skips damaged checkpoints for the newest intact one and says which
it skipped. `load_state` checks the `kind`, so a checkpoint of another kind of model is refused by
name. Checkpoints written before manifests existed (no `manifest.json`, no `format` in state.json)
still load, with their files' readability as the only check.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file

from wam.config import load_config, save_config
from wam.errors import WamError

FORMAT = 2  # state.json's `format`: 2 = has a manifest
MANIFEST = "manifest.json"
WEIGHTS = ("state.json", "config.yaml", "model.safetensors", "ema.safetensors")  # what loading reads
T = TypeVar("T")


class DamagedCheckpoint(WamError):
    """A checkpoint file is missing, truncated or corrupt (its message names the file)."""


@dataclass
class Checkpoint:
    """A loaded checkpoint."""

    path: Path
    state: dict
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None
    manifest: dict | None = None

    def optimizer_state(self) -> dict:
        verify(self.path, self.manifest, ["optimizer.pt"])
        path = self.path / "optimizer.pt"
        try:
            return torch.load(path, weights_only=False, map_location="cpu")  # GPU-saved opens anywhere
        except Exception as exc:  # unpickling a damaged file raises anything
            raise DamagedCheckpoint(f"{path} cannot be read ({type(exc).__name__}: {exc})") from None

    def config(self, cls: type[T]) -> T:
        """The run config saved with this checkpoint, as `cls`."""
        return read_config(cls, self.path)


# -- writing ------------------------------------------------------------------------------------
def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path) -> dict:
    """manifest.json of every file in `folder` (size and sha256), each file fsynced first."""
    files = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name != MANIFEST):
        _fsync(path)
        files[path.name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    manifest = {"format": FORMAT, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    _fsync(folder / MANIFEST)
    return manifest


def save_checkpoint(run_dir: str | Path, step: int, kind: str, model: dict[str, torch.Tensor],
                    ema: dict[str, torch.Tensor] | None, optimizer: dict | None, state: dict, config: Any,
                    keep: int = 3) -> Path:
    """Write checkpoint `step` of `run_dir` and point `last` at it; keep the newest `keep`."""
    for name, value in model.items():
        if not torch.isfinite(value).all():
            raise WamError(f"refusing to save step {step}: parameter '{name}' is not finite")
    folder = Path(run_dir) / "checkpoints"
    final = folder / f"step_{step:06d}"
    tmp, old = folder / f".step_{step:06d}.tmp", folder / f".step_{step:06d}.old"
    for leftover in (tmp, old):
        shutil.rmtree(leftover, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(_contiguous(model), tmp / "model.safetensors")
    if ema is not None:
        save_file(_contiguous(ema), tmp / "ema.safetensors")
    if optimizer is not None:
        torch.save(optimizer, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"kind": kind, "step": step, "format": FORMAT, **state}, indent=2))
    save_config(config, tmp / "config.yaml")
    write_manifest(tmp)
    if final.exists():  # the same step saved again (after resuming from an earlier one): swap, then delete
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    pointer = folder / "last.tmp"
    pointer.write_text(final.name)
    _fsync(pointer)
    os.replace(pointer, folder / "last")
    _fsync(folder)
    for stale in step_folders(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(stale, ignore_errors=True)
    return final


# -- finding and checking -----------------------------------------------------------------------
def step_folders(checkpoints: Path) -> list[Path]:
    """The `step_*` checkpoint folders under `checkpoints/`, oldest first."""
    return sorted(p for p in checkpoints.glob("step_*") if p.is_dir()) if checkpoints.is_dir() else []


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory from a run directory, a `checkpoints/` folder or a step folder."""
    path = Path(path)
    for candidate in (path, path / "checkpoints"):
        pointer = candidate / "last"
        if pointer.is_file():
            name = pointer.read_text().strip()
            if not name or not (candidate / name).is_dir():
                raise DamagedCheckpoint(f"{pointer} names '{name}', which is not a checkpoint folder in {candidate}")
            return candidate / name
    if (path / "state.json").is_file() or (path / MANIFEST).is_file():
        return path
    raise WamError(f"no checkpoint at {path} (expected a run folder, or a folder with state.json)")


def read_state(folder: Path) -> dict:
    """state.json of a checkpoint folder; a missing or unreadable one is refused by name."""
    path = folder / "state.json"
    if not path.is_file():
        raise DamagedCheckpoint(f"{path} is missing: {folder} is not a complete checkpoint")
    try:
        state = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DamagedCheckpoint(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise DamagedCheckpoint(f"{path} is not a checkpoint state (expected an object with an integer 'step')")
    return state


def read_manifest(folder: Path, state: dict) -> dict | None:
    """manifest.json (None for a checkpoint written before manifests); refused when damaged or missing."""
    path = folder / MANIFEST
    if not path.is_file():
        if state.get("format", 1) >= FORMAT:
            raise DamagedCheckpoint(f"{path} is missing (state.json says the checkpoint has one)")
        return None
    try:
        manifest = json.loads(path.read_text())
        return {"files": {str(k): {"bytes": int(v["bytes"]), "sha256": str(v["sha256"])}
                          for k, v in manifest["files"].items()}}
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        raise DamagedCheckpoint(f"{path} is not a readable manifest") from None


def verify(folder: Path, manifest: dict | None, names: list[str] | None = None) -> None:
    """Check `names` (default: every file in the manifest) against the manifest: present, same size,
    same sha256. Without a manifest (an old checkpoint) only the presence of model.safetensors."""
    if manifest is None:
        if not (folder / "model.safetensors").is_file():
            raise DamagedCheckpoint(f"{folder / 'model.safetensors'} is missing")
        return
    files = manifest["files"]
    for name in names if names is not None else list(files):
        if name not in files:
            continue  # not part of this checkpoint (an optional file that was not saved)
        path, want = folder / name, files[name]
        if not path.is_file():
            raise DamagedCheckpoint(f"{path} is missing (the checkpoint's manifest lists it)")
        size = path.stat().st_size
        if size != want["bytes"]:
            raise DamagedCheckpoint(f"{path} has {size} bytes, its manifest says {want['bytes']}: the file is "
                                    f"{'truncated' if size < want['bytes'] else 'damaged'}")
        if _sha256(path) != want["sha256"]:
            raise DamagedCheckpoint(f"{path} is corrupt: its sha256 does not match the checkpoint's manifest")


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except Exception as exc:  # SafetensorError, OSError, ...: the file is not what was saved
        raise DamagedCheckpoint(f"{path} cannot be read ({type(exc).__name__}: {exc})") from None


def read_config(cls: type[T], folder: str | Path) -> T:
    """config.yaml of a checkpoint (or run) folder as `cls`; a missing one is refused by its path."""
    path = Path(folder) / "config.yaml"
    if not path.is_file():
        raise DamagedCheckpoint(f"{path} is missing: a checkpoint needs the config it was trained with")
    return load_config(cls, path)


# -- loading ------------------------------------------------------------------------------------
def load_checkpoint(path: str | Path, kind: str | None = None, verify_all: bool = False) -> Checkpoint:
    """Load a checkpoint, verified against its manifest (every file with `verify_all`, else the ones read);
    one of another `kind` is refused with a message that says which, a damaged one by the file's name."""
    folder = resolve_checkpoint(path)
    try:
        return _load(folder, kind, verify_all)
    except DamagedCheckpoint as exc:
        raise DamagedCheckpoint(f"{exc}{_intact_hint(folder)}") from None


def _load(folder: Path, kind: str | None, verify_all: bool) -> Checkpoint:
    state = read_state(folder)
    if kind is not None and state.get("kind") != kind:
        raise WamError(f"{folder} is a '{state.get('kind')}' checkpoint, expected '{kind}'")
    manifest = read_manifest(folder, state)
    verify(folder, manifest, None if verify_all else list(WEIGHTS))
    ema_path = folder / "ema.safetensors"
    ema = _tensors(ema_path) if ema_path.exists() else None
    return Checkpoint(folder, state, _tensors(folder / "model.safetensors"), ema, manifest)


def _intact_hint(damaged: Path) -> str:
    """'; an intact earlier checkpoint: PATH' when the damaged one has an intact older sibling."""
    for folder in reversed([f for f in step_folders(damaged.parent) if f.name < damaged.name]):
        try:
            state = read_state(folder)
            verify(folder, read_manifest(folder, state), list(WEIGHTS))
            return f"; an intact earlier checkpoint: {folder}"
        except DamagedCheckpoint:
            continue
    return ""


def latest_intact(run_dir: str | Path, kind: str) -> tuple[Checkpoint, list[str]]:
    """The newest checkpoint of `run_dir` whose every file is intact, and one line per newer damaged
    checkpoint it skipped. Refused when none is intact."""
    damaged = []
    for folder in reversed(step_folders(Path(run_dir) / "checkpoints")):
        try:
            ckpt = _load(folder, kind, verify_all=True)
            if ckpt.manifest is None:
                ckpt.optimizer_state()  # an old checkpoint: at least it must unpickle
            return ckpt, damaged
        except DamagedCheckpoint as exc:
            damaged.append(str(exc))
    if not damaged:
        raise WamError(f"no checkpoint in {Path(run_dir) / 'checkpoints'}")
    raise DamagedCheckpoint(f"no intact checkpoint in {Path(run_dir) / 'checkpoints'}: {'; '.join(damaged)}")
