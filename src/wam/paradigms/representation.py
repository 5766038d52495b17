"""Representation-only (VPP, Fast-WAM): trained with the video loss, acts without imagining.

Training noises future and actions as the joint paradigm does, but the actions never attend to the
future (nor does anything the actions see), so at test time the future tokens can be left out
entirely: only the action chunk is denoised, from the current frame. The video loss shapes the
shared backbone; imagination costs nothing at test time. `imagine` (inspection, `eval-offline
--swap`) denoises the future beside the actions, as in training.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wam.nn.flow import euler_sample, gaussian
from wam.paradigms.base import CLEAN, ParadigmBase, mask_where, sample_group, video_and_action_loss

MASK = mask_where({"future": {"text", "obs", "state", "future", "action"},
                   "action": set(CLEAN) | {"action"}})


class Representation(ParadigmBase):
    name = "representation"
    keeps_prefix = True
    video = True

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        return video_and_action_loss(self, batch, MASK, False, generator)

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, *,
            given_future: Tensor | None = None, prefix: Tensor | None = None) -> Tensor:
        """(B, Ta, Da): actions only, no future tokens at all (`prefix` (B, P, Da): kept fixed, RTC)."""
        self.no_given_future(given_future)
        return sample_group(self, batch, MASK, "action", generator, prefix=prefix)

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        """(B, Tf, C, h, w), for inspection (acting never uses it), sampled as it was trained: in training
        the future always attends to noisy action tokens, so here the future and the actions are denoised
        together (the actions, which never see the future, follow exactly `act`'s path)."""
        b, dev = batch["text_emb"].shape[0], batch["text_emb"].device
        x = {"future": gaussian(self.parts.future_shape(b), generator, dev),
             "action": gaussian(self.parts.action_shape(b), generator, dev)}
        step = lambda x, t: self.parts.run(batch, MASK, future=(x["future"], t), action=(x["action"], t))  # noqa: E731
        return euler_sample(step, x, self.cfg.sample_steps)["future"]
