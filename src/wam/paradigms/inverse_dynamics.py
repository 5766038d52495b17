"""Inverse dynamics (UniPi, DVA): imagine the future, then infer the actions that lead there.

Training has two passes over the same batch: the video loss with the future noised (the actions
absent), and the action loss with the actions noised given the *clean* real future. At test time
the future is sampled first, then the actions given that imagined future. `given_future`
replaces the imagined future with the real one (the "future helps acting" study's upper bound).
"""

from __future__ import annotations

import torch
from torch import Tensor

from wam.paradigms.base import (CLEAN, ParadigmBase, future_loss, keep_mask, mask_where, noise_group, sample_group,
                                weighted_loss)

MASK = mask_where({"future": set(CLEAN) | {"future"},
                   "action": {"text", "obs", "state", "future", "action"}})


class InverseDynamics(ParadigmBase):
    name = "inverse_dynamics"
    video = True

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        video_loss = future_loss(self, batch, MASK, generator)
        a = noise_group(batch["action"], generator)
        clean = torch.zeros_like(a.t)
        action = self.parts.run(batch, MASK, future=(batch["future.latent"], clean), action=(a.x_t, a.t))["action"]
        action_loss = a.loss(action, keep_mask(batch["action_is_pad"], a.x0))
        return weighted_loss(self.cfg, action_loss, video_loss)

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        return sample_group(self, batch, MASK, "future", generator)

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, given_future: Tensor | None = None,
            prefix: Tensor | None = None) -> Tensor:
        """(B, Ta, Da): sample the future (unless given), then the actions given it (`prefix`: kept fixed, RTC)."""
        future = self.imagine(batch, generator) if given_future is None else given_future
        self.last_future = future  # what the actions were inferred from (the policy may show it)
        return sample_group(self, batch, MASK, "action", generator, clean_future=future, prefix=prefix)
