"""Joint prediction with the actions written into a latent frame (Cosmos Policy).

No action tokens and no action embedder: the normalised chunk (B, Ta, Da) is flattened to Ta*Da
values, tiled in order until a latent-shaped frame (C, h, w) is full (value i sits at every
position p with p % (Ta*Da) == i, so every entry is a real action value, never padding) and
appended to the future group as one more frame, one stride after the last future offset
(`base.next_offset`: a time no observation or real future frame uses, for any valid config, and
the same relative step the world model already knows between consecutive future frames). The
video model then treats it as a frame: the same patch embedder, read-out and weights.

Training: flow matching on the whole future group (real frames + action frame) with one flow
time; `video_loss` over the real frames (padded frames left out), `action_loss` over the action
frame (copies of padded actions left out). Acting: denoise the group from noise and read each
action value as the mean of its copies (the real frames are left in `last_future`); `imagine`
returns the real frames.

With `policy.latent_frame.state_frames` (Cosmos Policy's state), proprio enters as frames too and there is no state
token: the current states (B, To, Ds) are tiled into one clean frame, first in the obs group (one step
before the earliest obs frame), and the states at the future offsets (B, Tf, Ds) into one more frame of
the future group, after the action frame, denoised with it (`state_loss`, weighted as video; copies of
states past the episode's end left out). Acting reads only the action frame; the predicted states are
left in `last_state` (B, Tf, Ds).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from wam.errors import ConfigError
from wam.paradigms.base import (ParadigmBase, PolicyModelConfig, WamParts, keep_mask, mask_where, noise_group,
                                sample_group, weighted_loss)

MASK = mask_where({"future": {"text", "obs", "state", "future"}})


def _copies(n: int, size: int, device: torch.device | None = None) -> Tensor:
    """(size,) long: which of the n values fills each of the frame's `size` entries (tiled in order)."""
    return torch.arange(size, device=device) % n


def pack_actions(actions: Tensor, frame: tuple[int, int, int]) -> Tensor:
    """(B, Ta, Da) values (any dtype, bool too) -> (B, 1, C, h, w), the Ta*Da values tiled to fill it."""
    flat = actions.reshape(actions.shape[0], -1)  # (B, Ta*Da)
    return flat[:, _copies(flat.shape[1], math.prod(frame), flat.device)].reshape(actions.shape[0], 1, *frame)


def unpack_actions(frame: Tensor, chunk: int, dim: int) -> Tensor:
    """(B, 1, C, h, w) -> (B, Ta, Da): each action value the mean of its copies in the frame."""
    flat = frame.reshape(frame.shape[0], -1)  # (B, C*h*w)
    idx = _copies(chunk * dim, flat.shape[1], flat.device)
    total = flat.new_zeros(flat.shape[0], chunk * dim).index_add_(1, idx, flat)
    return (total / torch.bincount(idx, minlength=chunk * dim).to(flat.dtype)).reshape(-1, chunk, dim)


class JointLatentFrame(ParadigmBase):
    name = "joint"
    integration = "latent_frame"
    video = True
    imagines_when_acting = True
    settings = ("latent_frame",)  # joint.independent_t is refused (PolicyModelConfig.check)

    def __init__(self, cfg: PolicyModelConfig, parts: WamParts):
        super().__init__(cfg, parts)
        extra = 2 if cfg.latent_frame.state_frames else 1  # frames after the real ones: actions (and future states)
        if parts.action_io is not None or len(parts.future_times) != len(cfg.future) + extra:
            raise ConfigError("joint + latent_frame needs WamParts(..., action_frame=True)")
        size = math.prod(parts.frame_shape())
        if cfg.chunk * cfg.action_dim > size:
            raise ConfigError(f"policy.chunk * action_dim = {cfg.chunk * cfg.action_dim} action values do not fit "
                              f"into one latent frame of {size} values {parts.frame_shape()}; use a shorter chunk")
        longest = max(len(cfg.obs), len(cfg.future)) * cfg.state_dim
        if cfg.latent_frame.state_frames and longest > size:
            raise ConfigError(f"policy.latent_frame.state_frames: {longest} state values do not fit into one latent "
                              f"frame of {size} values; use fewer obs or future offsets")
        self.last_state: Tensor | None = None

    def _conditioned(self, batch: dict) -> dict:
        """The batch as the backbone reads it: with state frames, the current states packed into a frame
        put first in the obs group (B, 1 + To, C, h, w)."""
        if not self.cfg.latent_frame.state_frames:
            return batch
        state = pack_actions(batch["obs.state"], self.parts.frame_shape())  # (B, 1, C, h, w)
        return {**batch, "obs.latent": torch.cat([state, batch["obs.latent"]], 1)}

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        frame, n = self.parts.frame_shape(), len(self.cfg.future)
        future = batch["future.latent"]  # (B, Tf, C, h, w)
        frames = [future, pack_actions(batch["action"], frame)]
        if self.cfg.latent_frame.state_frames:
            if "future.state" not in batch:
                raise ConfigError("policy.latent_frame.state_frames needs the future proprio states "
                                  "(windows with state=True)")
            frames.append(pack_actions(batch["future.state"], frame))
        g = noise_group(torch.cat(frames, 1), generator)  # (B, Tf + 1 (+1), C, h, w)
        pred = self.parts.run(self._conditioned(batch), MASK, future=(g.x_t, g.t))["future"]
        acts = keep_mask(batch["action_is_pad"], batch["action"])  # (B, Ta, Da) bool
        real, packed = slice(None, n), slice(n, n + 1)
        video_loss = g.frames(real).loss(pred[:, real], keep_mask(batch["future_is_pad"], future))
        action_loss = g.frames(packed).loss(pred[:, packed], pack_actions(acts, frame))
        loss, metrics = weighted_loss(self.cfg, action_loss, video_loss)
        if self.cfg.latent_frame.state_frames:
            states = slice(n + 1, n + 2)
            kept = pack_actions(keep_mask(batch["future_is_pad"], batch["future.state"]), frame)
            state_loss = g.frames(states).loss(pred[:, states], kept)
            loss, metrics["state_loss"] = loss + self.cfg.video_weight * state_loss, state_loss.detach()
        return loss, metrics

    @torch.no_grad()
    def _sample(self, batch: dict, generator: torch.Generator | None) -> Tensor:
        return sample_group(self, self._conditioned(batch), MASK, "future", generator)  # (B, Tf + 1 (+1), C, h, w)

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, *,
            given_future: Tensor | None = None) -> Tensor:
        """(B, Ta, Da) normalised action chunk, read from the denoised action frame."""
        self.no_given_future(given_future)
        group, n = self._sample(batch, generator), len(self.cfg.future)
        self.last_future = group[:, :n]  # the real frames imagined beside the actions (the policy may show them)
        if self.cfg.latent_frame.state_frames:
            self.last_state = unpack_actions(group[:, n + 1:n + 2], n, self.cfg.state_dim)  # (B, Tf, Ds)
        return unpack_actions(group[:, n:n + 1], self.cfg.chunk, self.cfg.action_dim)

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        """(B, Tf, C, h, w): the real future frames denoised beside the action frame."""
        return self._sample(batch, generator)[:, :len(self.cfg.future)]
