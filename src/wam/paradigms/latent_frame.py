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

With `policy.latent_frame.value_frame` (Cosmos Policy's value), one more frame of the future group, last,
holds the value of the chunk, tiled like the action frame, denoised jointly (`value_loss`, weighted by
`latent_frame.value_weight`) and read back as the mean of its copies. Cosmos Policy predicts the expected
return; our demos are all successful scripted ones (the collector keeps an episode only if it succeeds and
stops at the first success), so the target is the discounted time to success at the chunk's end:

    V = gamma ** max(0, L - t - Ta)     (`value_target`; gamma = `latent_frame.gamma`, default 0.99)

for a window anchored at frame t (0-based) of an episode of L frames with a chunk of Ta actions: the
actions still to execute after this chunk before the demo's success (1 when the chunk reaches it). It is
written into the frame as 2V - 1 (in [-1, 1], as the normalised actions) and read back as V, unclamped,
into `last_value` (B,). With `latent_frame.value_candidates=N` acting samples N chunks in one batch (each
row's N noises drawn together from the generator: deterministic under it) and executes, per row, the one
of highest predicted value (best-of-N); `last_value`, `last_future` and `last_state` are the chosen one's.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from wam.errors import ConfigError
from wam.paradigms.base import (ParadigmBase, PolicyModelConfig, WamParts, keep_mask, mask_where, noise_group,
                                sample_group, weighted_loss)
from wam.paradigms.settings import LatentFrameConfig

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


def value_target(frame_index: Tensor, episode_length: Tensor, chunk: int, gamma: float) -> Tensor:
    """(B,) gamma ** (actions left after the chunk): the discounted time to success of a successful demo."""
    left = (episode_length.long() - frame_index.long() - chunk).clamp(min=0)  # (B,)
    return torch.as_tensor(gamma, dtype=torch.float32, device=left.device) ** left.float()


def repeat_rows(batch: dict, n: int) -> dict:
    """Each row's tensors repeated n times in place, (B, ...) -> (B * n, ...) (row b's copies at b*n .. b*n+n-1)."""
    return {k: v.repeat_interleave(n, 0) if isinstance(v, Tensor) and v.dim() else v for k, v in batch.items()}


def best_of(values: Tensor, n: int) -> Tensor:
    """(B * n,) values of n candidates per row -> (B,) the flat index of each row's highest-valued candidate."""
    rows = values.reshape(-1, n)  # (B, n)
    return torch.arange(rows.shape[0], device=values.device) * n + rows.argmax(1)


def set_value_candidates(cfg: PolicyModelConfig, n: int, flag: str) -> None:
    """Act best-of-`n` from now on (`wam eval --value_candidates`), or a ConfigError naming `flag` where the
    policy has no value frame to choose by."""
    section = replace(getattr(cfg, "latent_frame", None) or LatentFrameConfig(), value_candidates=n)
    try:
        section.check()
    except ConfigError as err:
        raise ConfigError(f"{flag}={n}: {err}") from None
    cfg.latent_frame = section


class JointLatentFrame(ParadigmBase):
    name = "joint"
    integration = "latent_frame"
    video = True
    imagines_when_acting = True
    settings = ("latent_frame",)  # joint.independent_t is refused (PolicyModelConfig.check)

    def __init__(self, cfg: PolicyModelConfig, parts: WamParts):
        super().__init__(cfg, parts)
        lf = cfg.latent_frame
        extra = 1 + lf.state_frames + lf.value_frame  # frames after the real ones: actions (future states, value)
        if parts.action_io is not None or len(parts.future_times) != len(cfg.future) + extra:
            raise ConfigError("joint + latent_frame needs WamParts(..., action_frame=True)" + (
                "; policy.latent_frame.state_frames and value_frame are implemented for backbone.kind=wam" if extra > 1
                else ""))
        size = math.prod(parts.frame_shape())
        if cfg.chunk * cfg.action_dim > size:
            raise ConfigError(f"policy.chunk * action_dim = {cfg.chunk * cfg.action_dim} action values do not fit "
                              f"into one latent frame of {size} values {parts.frame_shape()}; use a shorter chunk")
        longest = max(len(cfg.obs), len(cfg.future)) * cfg.state_dim
        if cfg.latent_frame.state_frames and longest > size:
            raise ConfigError(f"policy.latent_frame.state_frames: {longest} state values do not fit into one latent "
                              f"frame of {size} values; use fewer obs or future offsets")
        self.last_state: Tensor | None = None
        self.last_value: Tensor | None = None  # (B,) the value read off the last `act`'s value frame

    def reset(self) -> None:
        """A new episode: no state or value of the last one's chunks is left to read."""
        self.last_state = self.last_value = None

    def _conditioned(self, batch: dict) -> dict:
        """The batch as the backbone reads it: with state frames, the current states packed into a frame
        put first in the obs group (B, 1 + To, C, h, w)."""
        if not self.cfg.latent_frame.state_frames:
            return batch
        state = pack_actions(batch["obs.state"], self.parts.frame_shape())  # (B, 1, C, h, w)
        return {**batch, "obs.latent": torch.cat([state, batch["obs.latent"]], 1)}

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        frame, n, lf = self.parts.frame_shape(), len(self.cfg.future), self.cfg.latent_frame
        future = batch["future.latent"]  # (B, Tf, C, h, w)
        frames = [future, pack_actions(batch["action"], frame)]
        if lf.state_frames:
            if "future.state" not in batch:
                raise ConfigError("policy.latent_frame.state_frames needs the future proprio states "
                                  "(windows with state=True)")
            frames.append(pack_actions(batch["future.state"], frame))
        if lf.value_frame:
            frames.append(pack_actions(2 * self._value_target(batch)[:, None, None] - 1, frame))
        g = noise_group(torch.cat(frames, 1), generator)  # (B, Tf + 1 (+1) (+1), C, h, w)
        pred = self.parts.run(self._conditioned(batch), MASK, future=(g.x_t, g.t))["future"]
        acts = keep_mask(batch["action_is_pad"], batch["action"])  # (B, Ta, Da) bool
        real, packed = slice(None, n), slice(n, n + 1)
        video_loss = g.frames(real).loss(pred[:, real], keep_mask(batch["future_is_pad"], future))
        action_loss = g.frames(packed).loss(pred[:, packed], pack_actions(acts, frame))
        loss, metrics = weighted_loss(self.cfg, action_loss, video_loss)
        if lf.state_frames:
            states = slice(n + 1, n + 2)
            kept = pack_actions(keep_mask(batch["future_is_pad"], batch["future.state"]), frame)
            state_loss = g.frames(states).loss(pred[:, states], kept)
            loss, metrics["state_loss"] = loss + self.cfg.video_weight * state_loss, state_loss.detach()
        if lf.value_frame:
            value = slice(-1, None)
            value_loss = g.frames(value).loss(pred[:, value], torch.ones_like(g.x0[:, value], dtype=torch.bool))
            loss, metrics["value_loss"] = loss + lf.value_weight * value_loss, value_loss.detach()
        return loss, metrics

    def _value_target(self, batch: dict) -> Tensor:
        """(B,) the value target of each window (`value_target`), from its frame index and episode length."""
        if "frame_index" not in batch or "episode_length" not in batch:
            raise ConfigError("policy.latent_frame.value_frame needs each window's frame_index and episode_length "
                              "(WindowDataset samples carry both)")
        return value_target(batch["frame_index"], batch["episode_length"], self.cfg.chunk, self.cfg.latent_frame.gamma)

    @torch.no_grad()
    def _sample(self, batch: dict, generator: torch.Generator | None) -> Tensor:
        return sample_group(self, self._conditioned(batch), MASK, "future", generator)  # (B, Tf + 1 (+1), C, h, w)

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, *,
            given_future: Tensor | None = None) -> Tensor:
        """(B, Ta, Da) normalised action chunk, read from the denoised action frame (with value_candidates=N:
        the highest-valued of N sampled per row)."""
        self.no_given_future(given_future)
        n, lf = len(self.cfg.future), self.cfg.latent_frame
        k = lf.value_candidates if lf.value_frame else 1
        group = self._sample(repeat_rows(batch, k) if k > 1 else batch, generator)  # (B * k, Tf + extra, C, h, w)
        if lf.value_frame:
            values = (unpack_actions(group[:, -1:], 1, 1).reshape(-1) + 1) / 2  # (B * k,) in value units
            pick = best_of(values, k)  # (B,)
            group, self.last_value = group[pick], values[pick]
        self.last_future = group[:, :n]  # the real frames imagined beside the actions (the policy may show them)
        if lf.state_frames:
            self.last_state = unpack_actions(group[:, n + 1:n + 2], n, self.cfg.state_dim)  # (B, Tf, Ds)
        return unpack_actions(group[:, n:n + 1], self.cfg.chunk, self.cfg.action_dim)

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        """(B, Tf, C, h, w): the real future frames denoised beside the action frame."""
        return self._sample(batch, generator)[:, :len(self.cfg.future)]
