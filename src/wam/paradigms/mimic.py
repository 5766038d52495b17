"""mimic-video: an action decoder reading *partly denoised* video features (representation at a fixed noise level).

The video model is denoised only down to a fixed flow time `tau = policy.mimic.feature_noise` (0: fully
denoised, towards 1: barely started); the action tokens then read its tokens at that noise level.

Training, two passes over the batch:
- video: the future noised at a drawn t, seeing text, obs, state and itself (never the actions, so the
  features the actions read do not depend on them);
- action: the REAL future noised at exactly `tau` (fresh noise), the actions noised at a drawn t; the
  actions see obs, state, that future and themselves. The instruction reaches them only through the
  video tokens (which see it), as in mimic-video, where language conditions the video backbone.

Acting: integrate the future from noise (t=1) down to `tau` (a partial denoise, `sample_steps` steps),
then denoise the actions with those features held at `tau`. `given_future` (e.g. the real one) is
noised to `tau` first. `imagine` denoises the future all the way (the video head as trained).
"""

from __future__ import annotations

import torch
from torch import Tensor

from wam.nn.flow import gaussian, interpolate
from wam.paradigms.base import (CLEAN, ParadigmBase, future_loss, keep_mask, mask_where, noise_group, sample_group,
                                weighted_loss)

VIDEO = set(CLEAN) | {"future"}
MASK = mask_where({"future": VIDEO, "action": {"obs", "state", "future", "action"}})


class Mimic(ParadigmBase):
    name = "mimic"
    video = True
    imagines_when_acting = True  # partly denoised: down to feature_noise
    acts_from_future = True
    settings = ("mimic",)

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        video_loss = future_loss(self, batch, MASK, generator)
        a = noise_group(batch["action"], generator)
        features = self._at_tau(batch["future.latent"], generator)
        tau = torch.full_like(a.t, self.cfg.mimic.feature_noise)
        action = self.parts.run(batch, MASK, future=(features, tau), action=(a.x_t, a.t))["action"]
        action_loss = a.loss(action, keep_mask(batch["action_is_pad"], a.x0))
        return weighted_loss(self.cfg, action_loss, video_loss)

    def _at_tau(self, future: Tensor, generator: torch.Generator | None) -> Tensor:
        """A clean future (B, Tf, C, h, w) noised to the feature level tau."""
        noise = gaussian(future.shape, generator, future.device, future.dtype)
        return interpolate(future, noise, self.cfg.mimic.feature_noise)

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        return sample_group(self, batch, MASK, "future", generator)

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, *,
            given_future: Tensor | None = None) -> Tensor:
        """(B, Ta, Da): the future partly denoised to tau (or a given one noised to tau), then the actions."""
        tau = self.cfg.mimic.feature_noise
        if given_future is None:
            features = sample_group(self, batch, MASK, "future", generator, t_end=tau)
        else:
            features = self._at_tau(given_future, generator)
        self.last_future = features  # partly denoised latents (the policy may show them)
        return sample_group(self, batch, MASK, "action", generator, clean_future=features, future_t=tau)
