"""`wam train --init`: a world model's weights into a policy's parts, by structure and strictly.

A policy's shared parts are a world model (wam.paradigms.base.WamParts is a VideoWorldModel; a
diffusers BackboneParts has BackboneWorldModel's `backbone` and `text_in`) plus the policy's own
modules, under the same names. Every tensor of the two state dicts is one of:

    shared   in both: copied; `load_state_dict(strict=True)` gives every parts tensor a value
    fresh    the policy's own: a module of `parts.POLICY_ONLY` (state / action embedders and heads), or
             `parts.extension(key, world)`: a sub-part the world model has none of (a MoT expert it was
             not trained with, a LoRA adapter); kept at its initialisation
    unused   a module the parts have none of (an action-conditioned world model's `action_in`, a code
             world model's `lam` / `code_io`, the future head under an action-only policy), or an
             extension the policy does not build (an expert)

Anything else (a parts tensor the world model lacks, a world-model tensor in a shared module with no
place in the policy, another shape) is refused with one line: nothing is skipped silently.

    loaded = load_world(parts, world_model.state_dict(), "--init=runs/wm")   # Loaded(fresh, unused)

`wam pretrain --init` (`extend_world`) copies a world model into another of the same architecture that adds or
drops action conditioning: only the action parts (`action_in`, a MoT's action expert) may be on one side alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from wam.errors import ConfigError


@dataclass
class Loaded:
    """What `--init` gave the policy, named as nn.Module.load_state_dict's result."""

    missing_keys: list[str]  # fresh: the policy's own tensors, at their initialisation
    unexpected_keys: list[str]  # unused: world-model tensors the policy has no place for


def _top(key: str) -> str:
    return key.split(".")[0]


def _listed(keys: list[str]) -> str:
    return keys[0] + (f" and {len(keys) - 1} more" if len(keys) > 1 else "")


def load_world(parts: nn.Module, world: dict[str, Tensor], source: str = "the world model") -> Loaded:
    """Copy the `world` state dict into `parts` (see the module docstring); a mismatch is a ConfigError."""
    ours = parts.state_dict()
    children = {name for name, _ in parts.named_children()}
    fresh = [k for k in ours if k not in world and (_top(k) in parts.POLICY_ONLY or parts.extension(k, world))]
    lacking = [k for k in ours if k not in world and k not in set(fresh)]
    if lacking:
        raise ConfigError(f"{source} lacks {_listed(lacking)} of the policy's world-model parts: it was not "
                          f"pretrained with this architecture")
    unused = [k for k in world if k not in ours and (_top(k) not in children or parts.extension(k, ours))]
    stray = [k for k in world if k not in ours and k not in set(unused)]
    if stray:
        raise ConfigError(f"{source} holds {_listed(stray)}, which the policy's {_top(stray[0])} has no place for")
    try:
        parts.load_state_dict({k: world.get(k, v) for k, v in ours.items()}, strict=True)
    except RuntimeError as exc:  # another shape
        raise ConfigError(f"{source} does not fit the policy: {str(exc).splitlines()[-1].strip()[:200]}") from None
    return Loaded(fresh, unused)


ACTION_PARTS = ("action_in.", ".experts.action.")  # a world model's tensors that exist only with action_chunk > 0


def _action_part(key: str) -> bool:
    return key.startswith(ACTION_PARTS[0]) or ACTION_PARTS[1] in key


def extend_world(model: nn.Module, world: dict[str, Tensor], source: str = "the world model") -> str:
    """Copy a world model's state dict into `model`, which may add or drop the action parts and nothing else;
    returns one line saying what was loaded, what starts fresh and what was left out."""
    ours = model.state_dict()
    fresh = [k for k in ours if k not in world]
    unused = [k for k in world if k not in ours]
    other = [k for k in fresh + unused if not _action_part(k)]
    if other:
        raise ConfigError(f"{source} does not match the world model here ({_listed(other)} on one side only): "
                          f"only action conditioning may be added or dropped")
    try:
        model.load_state_dict({k: world.get(k, v) for k, v in ours.items()}, strict=True)
    except RuntimeError as exc:  # another shape
        raise ConfigError(f"{source} does not fit: {str(exc).splitlines()[-1].strip()[:200]}") from None
    top = lambda keys: ", ".join(sorted({k.split(".")[0] for k in keys})) or "none"  # noqa: E731
    return (f"{source}: loaded {len(ours) - len(fresh)} tensors ({top(k for k in ours if k in world)}); "
            f"fresh: {top(fresh)} ({len(fresh)} action tensors)" + (f"; not used: {top(unused)}" if unused else ""))
