"""The action-only baseline (VLA-style): same backbone, data and language encoder, no video.

No future group, no video loss, and trained from scratch (no video pretraining): the policy a
WAM must beat at equal data and compute.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wam.paradigms.base import CLEAN, ParadigmBase, keep_mask, mask_where, noise_group, sample_group

MASK = mask_where({"action": set(CLEAN) | {"action"}})


class ActionOnly(ParadigmBase):
    name = "action_only"
    keeps_prefix = True
    video = False

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        a = noise_group(batch["action"], generator)
        out = self.parts.run(batch, MASK, action=(a.x_t, a.t))
        action_loss = a.loss(out["action"], keep_mask(batch["action_is_pad"], a.x0))
        return self.cfg.action_weight * action_loss, {"action_loss": action_loss.detach()}

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, *,
            given_future: Tensor | None = None, prefix: Tensor | None = None) -> Tensor:
        self.no_given_future(given_future)
        return sample_group(self, batch, MASK, "action", generator, prefix=prefix)

    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> None:
        return None  # no video head
