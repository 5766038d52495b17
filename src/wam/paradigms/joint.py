"""Joint prediction (UVA, PAD, DreamZero): denoise the future frames and the actions together.

Training noises both (one flow time, or one each with `policy.joint.independent_t`); both see every group.
At test time both are denoised together from noise, so the actions are generated beside an
imagined future; `imagine` returns that future.
"""

from __future__ import annotations

import torch
from torch import Tensor

from wam.nn.flow import euler_sample, gaussian
from wam.paradigms.base import ParadigmBase, mask_where, video_and_action_loss

MASK = mask_where({"future": {"text", "obs", "state", "future", "action"},
                   "action": {"text", "obs", "state", "future", "action"}})


class Joint(ParadigmBase):
    name = "joint"
    keeps_prefix = True
    video = True
    imagines_when_acting = True
    settings = ("joint",)

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        return video_and_action_loss(self, batch, MASK, not self.cfg.joint.independent_t, generator)

    def _sample(self, batch: dict, generator: torch.Generator | None, prefix: Tensor | None = None) -> dict[str, Tensor]:
        b = batch["text_emb"].shape[0]
        dev = batch["text_emb"].device
        x = {"future": gaussian(self.parts.future_shape(b), generator, dev),
             "action": gaussian(self.parts.action_shape(b), generator, dev)}
        cache = self.parts.prefill(batch, MASK) if self.cfg.kv_cache and self.cfg.sample_steps > 1 else None
        step = lambda x, t: self.parts.run(batch, MASK, future=(x["future"], t), action=(x["action"], t),  # noqa: E731
                                           cache=cache)
        return euler_sample(step, x, self.cfg.sample_steps, fixed=None if prefix is None else {"action": prefix})

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, *,
            given_future: Tensor | None = None, prefix: Tensor | None = None) -> Tensor:
        """(B, Ta, Da) normalised action chunk (`prefix` (B, P, Da): kept fixed, RTC)."""
        self.no_given_future(given_future)
        x = self._sample(batch, generator, prefix)
        self.last_future = x["future"]  # imagined beside the actions (the policy may show it)
        return x["action"]

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        return self._sample(batch, generator)["future"]
