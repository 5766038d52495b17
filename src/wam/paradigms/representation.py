"""Representation-only (VPP, Fast-WAM): trained with the video loss, acts without imagining.

Training noises future and actions as the joint paradigm does, but the actions never attend to the
future (nor does anything the actions see), so at test time the future tokens can be left out
entirely: only the action chunk is denoised, from the current frame. The video loss shapes the
shared backbone; imagination costs nothing at test time.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wam.paradigms.base import ParadigmBase, video_and_action_loss, CLEAN, euler, mask_where

MASK = mask_where({"future": {"text", "obs", "state", "future", "action"},
                   "action": set(CLEAN) | {"action"}})


class Representation(ParadigmBase):
    name = "representation"
    video = True

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        return video_and_action_loss(self, batch, MASK, False, generator)

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        """(B, Ta, Da): actions only, no future tokens at all."""
        x = {"action": torch.randn(self.parts.action_shape(batch["text_emb"].shape[0]), generator=generator)}
        step = lambda x, t: self.parts.run(batch, MASK, action=(x["action"], t))  # noqa: E731
        return euler(step, x, self.cfg.sample_steps)["action"]

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        """The video head still works (for inspection), though acting never uses it."""
        x = {"future": torch.randn(self.parts.future_shape(batch["text_emb"].shape[0]), generator=generator)}
        step = lambda x, t: self.parts.run(batch, MASK, future=(x["future"], t))  # noqa: E731
        return euler(step, x, self.cfg.sample_steps)["future"]
