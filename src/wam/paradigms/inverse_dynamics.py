"""Inverse dynamics (UniPi, AVDC-style): imagine the future, then infer the actions between now and it.

Two passes over the same batch, each with its own mask:

- video (the world model): the future noised, seeing text, obs, state and itself;
- action (the inverse-dynamics model): the actions noised given the *clean real* future. Here no
  token sees the instruction: actions see obs, proprio state, the future and themselves, and those
  groups see only each other. Text cannot reach the actions through any path
  (`ACTION_MASK.reachable`), so the action head must read the change from the frames: it cannot
  collapse into an instruction-conditioned behaviour-cloning policy.

At test time the future is sampled first (instruction-conditioned), then the actions given that
imagined future. `given_future` replaces it with the real one (the "future helps acting" upper
bound). The earlier variant, whose action head also read the instruction, is `future_conditioned`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wam.nn.token_groups import GroupMask
from wam.paradigms.base import (CLEAN, ParadigmBase, future_loss, given_future_action_loss, imagine_then_act,
                                mask_where, sample_group, weighted_loss)

VIDEO_MASK = mask_where({"future": set(CLEAN) | {"future"}})
FRAMES = {"obs", "state", "future"}  # what the inverse-dynamics pass reads: frames and proprio, no text
ACTION_MASK = GroupMask(allowed={"text": {"text"}, "obs": {"obs", "state"}, "state": {"obs", "state"},
                                 "future": FRAMES, "action": FRAMES | {"action"}})


class InverseDynamics(ParadigmBase):
    name = "inverse_dynamics"
    keeps_prefix = True
    video = True
    imagines_when_acting = True
    acts_from_future = True

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        video_loss = future_loss(self, batch, VIDEO_MASK, generator)
        action_loss = given_future_action_loss(self, batch, ACTION_MASK, generator)
        return weighted_loss(self.cfg, action_loss, video_loss)

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        return sample_group(self, batch, VIDEO_MASK, "future", generator)

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, *,
            given_future: Tensor | None = None, prefix: Tensor | None = None) -> Tensor:
        """(B, Ta, Da): sample the future (unless given), then the actions from (obs, future, state) alone
        (`prefix` (B, P, Da): kept fixed, RTC)."""
        return imagine_then_act(self, batch, VIDEO_MASK, ACTION_MASK, generator, given_future, prefix)
