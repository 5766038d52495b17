"""Representation-only (VPP, Fast-WAM): trained with the video loss, acts without imagining.

Training noises future and actions as the joint paradigm does, but the actions never attend to the
future (nor does anything the actions see), so at test time the future tokens can be left out
entirely: only the action chunk is denoised, from the current frame. The video loss shapes the
shared backbone; imagination costs nothing at test time.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wam.paradigms.base import CLEAN, PolicyModelConfig, WamParts, euler, keep_mask, mask_where, noise_group

MASK = mask_where({"future": {"text", "obs", "state", "future", "action"},
                   "action": set(CLEAN) | {"action"}})


class Representation(nn.Module):
    name = "representation"
    video = True

    def __init__(self, cfg: PolicyModelConfig, parts: WamParts):
        super().__init__()
        self.cfg, self.parts = cfg, parts

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        a = noise_group(batch["action"], generator)
        f = noise_group(batch["future.latent"], generator)
        out = self.parts.run(batch, MASK, future=(f.x_t, f.t), action=(a.x_t, a.t))
        action_loss = a.loss(out["action"], keep_mask(batch["action_is_pad"], a.x0))
        video_loss = f.loss(out["future"], keep_mask(batch["future_is_pad"], f.x0))
        loss = self.cfg.action_weight * action_loss + self.cfg.video_weight * video_loss
        return loss, {"action_loss": action_loss.detach(), "video_loss": video_loss.detach()}

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
