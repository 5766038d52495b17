"""Paradigms: small strategy objects over one model family (see base.py).

    paradigm = build_paradigm("representation", PolicyModelConfig(), tokenizer)
    loss, metrics = paradigm.loss(batch)          # training
    chunk = paradigm.act(batch)                   # (B, Ta, Da) normalised actions
    future = paradigm.imagine(batch)              # (B, Tf, C, h, w) latents, or None

Each paradigm declares its groups and mask in its own module; none inherits from another.
"""

from __future__ import annotations

from torch import nn

from wam.errors import ConfigError
from wam.nn.tokenizer import FrameAutoencoder
from wam.paradigms.action_only import ActionOnly
from wam.paradigms.base import PolicyModelConfig, WamParts
from wam.paradigms.inverse_dynamics import InverseDynamics
from wam.paradigms.joint import Joint
from wam.paradigms.representation import Representation

PARADIGMS: dict[str, type[nn.Module]] = {p.name: p for p in (Joint, Representation, InverseDynamics, ActionOnly)}


def build_paradigm(name: str, cfg: PolicyModelConfig, tokenizer: FrameAutoencoder) -> nn.Module:
    """A paradigm by name over a fresh set of model parts; unknown names are refused with the list."""
    if name not in PARADIGMS:
        raise ConfigError(f"unknown paradigm '{name}'; choose one of {', '.join(PARADIGMS)}")
    cls = PARADIGMS[name]
    return cls(cfg, WamParts(cfg, tokenizer, video=cls.video))  # video_weight is unused without video
