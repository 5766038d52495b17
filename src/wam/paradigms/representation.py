"""Representation-only (VPP, Fast-WAM): trained with the video loss, acts without imagining.

Training noises future and actions as the joint paradigm does, but the actions never attend to the
future (nor does anything the actions see), so at test time the future tokens can be left out
entirely: only the action chunk is denoised, from the current frame. The video loss shapes the
shared backbone; imagination costs nothing at test time.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wam.paradigms.base import CLEAN, ParadigmBase, mask_where, sample_group, video_and_action_loss

MASK = mask_where({"future": {"text", "obs", "state", "future", "action"},
                   "action": set(CLEAN) | {"action"}})


class Representation(ParadigmBase):
    name = "representation"
    video = True

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        return video_and_action_loss(self, batch, MASK, False, generator)

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, prefix: Tensor | None = None) -> Tensor:
        """(B, Ta, Da): actions only, no future tokens at all (`prefix` (B, P, Da): kept fixed, RTC)."""
        return sample_group(self, batch, MASK, "action", generator, prefix=prefix)

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        """The video head still works (for inspection), though acting never uses it."""
        return sample_group(self, batch, MASK, "future", generator)
