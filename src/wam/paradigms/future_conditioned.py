"""Future-conditioned policy: imagine the future, then act conditioned on it AND the instruction.

What `inverse_dynamics` was before issue 11, kept under a name that says what it is: the same two
passes (video: future noised; action: actions noised given the clean real future), but the action
tokens attend to text, obs, state and the future alike. Nothing forces them to use the future: the
action head can ignore it and clone behaviour from (instruction, frame). Compare it with
`inverse_dynamics` (whose action head never sees the instruction) to see whether acting goes
through the imagined future.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wam.paradigms.base import (CLEAN, ParadigmBase, future_loss, given_future_action_loss, imagine_then_act,
                                mask_where, sample_group, weighted_loss)

MASK = mask_where({"future": set(CLEAN) | {"future"},
                   "action": {"text", "obs", "state", "future", "action"}})


class FutureConditioned(ParadigmBase):
    name = "future_conditioned"
    keeps_prefix = True
    video = True
    imagines_when_acting = True
    acts_from_future = True

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        video_loss = future_loss(self, batch, MASK, generator)
        action_loss = given_future_action_loss(self, batch, MASK, generator)
        return weighted_loss(self.cfg, action_loss, video_loss)

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        return sample_group(self, batch, MASK, "future", generator)

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, *,
            given_future: Tensor | None = None, prefix: Tensor | None = None) -> Tensor:
        """(B, Ta, Da): sample the future (unless given), then the actions given it and the instruction
        (`prefix` (B, P, Da): committed actions kept fixed, RTC)."""
        return imagine_then_act(self, batch, MASK, MASK, generator, given_future, prefix)
