"""Joint prediction (UVA, PAD, DreamZero): denoise the future frames and the actions together.

Training noises both (one flow time, or one each with `independent_t`); both see every group.
At test time both are denoised together from noise, so the actions are generated beside an
imagined future; `imagine` returns that future.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wam.paradigms.base import PolicyModelConfig, WamParts, euler, keep_mask, mask_where, noise_group

MASK = mask_where({"future": {"text", "obs", "state", "future", "action"},
                   "action": {"text", "obs", "state", "future", "action"}})


class Joint(nn.Module):
    name = "joint"
    video = True

    def __init__(self, cfg: PolicyModelConfig, parts: WamParts):
        super().__init__()
        self.cfg, self.parts = cfg, parts

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        a = noise_group(batch["action"], generator)
        f = noise_group(batch["future.latent"], generator, None if self.cfg.independent_t else a.t)
        out = self.parts.run(batch, MASK, future=(f.x_t, f.t), action=(a.x_t, a.t))
        action_loss = a.loss(out["action"], keep_mask(batch["action_is_pad"], a.x0))
        video_loss = f.loss(out["future"], keep_mask(batch["future_is_pad"], f.x0))
        loss = self.cfg.action_weight * action_loss + self.cfg.video_weight * video_loss
        return loss, {"action_loss": action_loss.detach(), "video_loss": video_loss.detach()}

    def _sample(self, batch: dict, generator: torch.Generator | None) -> dict[str, Tensor]:
        b = batch["text_emb"].shape[0]
        x = {"future": torch.randn(self.parts.future_shape(b), generator=generator),
             "action": torch.randn(self.parts.action_shape(b), generator=generator)}
        step = lambda x, t: self.parts.run(batch, MASK, future=(x["future"], t), action=(x["action"], t))  # noqa: E731
        return euler(step, x, self.cfg.sample_steps)

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        """(B, Ta, Da) normalised action chunk."""
        return self._sample(batch, generator)["action"]

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        return self._sample(batch, generator)["future"]
