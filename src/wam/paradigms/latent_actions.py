"""Latent actions (LAPA, Genie) as the action integration, for the joint and inverse-dynamics paradigms.

A latent-action model (LAM, wam.nn.latent_action) learns from action-free frame pairs what changed
between consecutive frames (current -> future 1 -> future 2 ...), as one code of a small codebook
per pair. A small action decoder maps those codes (+ proprio state; no frame, so it cannot bypass the
codes) to the robot action chunk; it is the only part trained on actions, and its loss skips samples whose actions are
missing (`action_is_pad` all True), so action-free episodes train everything else.

- joint + latent_actions: the backbone denoises a `latent_action` group (one token per future
  frame, modality "action", target: the LAM's quantised codes, stop-gradient) jointly with the
  future frames. Acting: denoise both, snap the codes to the codebook, decode the actions.
- inverse_dynamics + latent_actions: the LAM encoder *is* an inverse-dynamics model; the backbone
  only imagines the future, and the LAM reads the codes off (current frame, imagined future).

Loss = video_weight * video + lam_weight * LAM (recon + VQ) [+ code_weight * code prediction]
+ action_weight * action decoder. The LAM and the decoder are modules of the strategy, not of
WamParts, so a `wam pretrain` checkpoint still initialises the shared parts (they are new keys).
"""

from __future__ import annotations

import torch
from torch import Tensor

from wam.models.groups import VectorTokens, vector_positions
from wam.nn.flow import euler_sample, gaussian, masked_mse
from wam.nn.latent_action import ActionDecoder, LamOutput, LatentActionModel
from wam.nn.transformer import TokenGroup
from wam.paradigms.base import (CLEAN, ParadigmBase, PolicyModelConfig, WamParts, future_loss, keep_mask,
                                mask_where, noise_group, sample_group)

ALL = {"text", "obs", "state", "future", "latent_action"}
JOINT_MASK = mask_where({"future": ALL, "latent_action": ALL})
VIDEO_MASK = mask_where({"future": set(CLEAN) | {"future"}})


def _build(p: ParadigmBase) -> None:
    """Give a strategy its LAM and action decoder."""
    cfg, c = p.cfg, p.parts.tokenizer.cfg.latent_channels
    p.lam = LatentActionModel(c, cfg.lam_codes, cfg.lam_dim, cfg.lam_width, cfg.lam_beta)
    p.decoder = ActionDecoder(len(cfg.future), cfg.lam_dim, cfg.state_dim, cfg.chunk, cfg.action_dim)


def frame_pairs(batch: dict, future: Tensor | None = None) -> Tensor:
    """(B, 1+Tf, C, h, w): the current frame (the last obs offset) followed by the future frames."""
    future = batch["future.latent"] if future is None else future
    return torch.cat([batch["obs.latent"][:, -1:], future], 1)


def decode_actions(p: ParadigmBase, batch: dict, codes: Tensor) -> Tensor:
    """(B, Tf, D) codes -> (B, Ta, Da) actions, given the current proprio state (never the frame)."""
    return p.decoder(codes, batch["obs.state"][:, -1])


def action_loss(p: ParadigmBase, batch: dict, codes: Tensor) -> Tensor:
    """The decoder's loss on the LAM's codes (stop-gradient: the LAM never learns from actions);
    padded steps and action-free samples (all steps padded, or no "action" at all) count for nothing."""
    pred = decode_actions(p, batch, codes.detach())
    if "action" not in batch:
        return pred.sum() * 0.0
    return masked_mse(pred, batch["action"], keep_mask(batch["action_is_pad"], pred))


def total(p: ParadigmBase, lam: LamOutput, video: Tensor, action: Tensor,
          code: Tensor | None = None) -> tuple[Tensor, dict]:
    cfg = p.cfg
    loss = cfg.video_weight * video + cfg.lam_weight * lam.loss + cfg.action_weight * action
    metrics = {"action_loss": action.detach(), "video_loss": video.detach(), "lam_loss": lam.loss.detach(),
               "lam_recon": lam.recon.detach(), "code_perplexity": lam.perplexity, "codes_used": lam.used}
    if code is not None:
        loss = loss + cfg.code_weight * code
        metrics["code_loss"] = code.detach()
    return loss, metrics


class JointLatentActions(ParadigmBase):
    """Joint denoising of the future frames and the latent-action codes; actions decoded from the codes."""

    name = "joint"
    integration = "latent_actions"
    settings = ("joint", "lam_*")  # the latent-action keys are still flat in PolicyModelConfig
    backbone_actions = False
    video = True
    imagines_when_acting = True

    def __init__(self, cfg: PolicyModelConfig, parts: WamParts):
        super().__init__(cfg, parts)
        _build(self)
        self.code_io = VectorTokens(cfg.lam_dim, cfg.backbone.resolved_width(), out=True)
        self.register_buffer("code_pos", vector_positions(cfg.future), persistent=False)

    def _run(self, batch: dict, future: Tensor, codes: Tensor, t_future: Tensor, t_codes: Tensor) -> dict[str, Tensor]:
        """Velocities of the future (B, Tf, C, h, w) and of the codes (B, Tf, D)."""
        group = TokenGroup("latent_action", self.code_io.embed(codes), t_codes, self.code_pos, "action")
        out = self.parts.run(batch, JOINT_MASK, future=(future, t_future), extra=[group])
        return {"future": out["future"], "latent_action": self.code_io.read_out(out["latent_action"]).float()}

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        lam = self.lam(frame_pairs(batch), ~batch["future_is_pad"])
        f = noise_group(batch["future.latent"], generator)
        z = noise_group(lam.codes.detach(), generator, None if self.cfg.joint.independent_t else f.t)
        out = self._run(batch, f.x_t, z.x_t, f.t, z.t)
        video = f.loss(out["future"], keep_mask(batch["future_is_pad"], f.x0))
        code = z.loss(out["latent_action"], keep_mask(batch["future_is_pad"], z.x0))
        return total(self, lam, video, action_loss(self, batch, lam.codes), code)

    def _sample(self, batch: dict, generator: torch.Generator | None) -> dict[str, Tensor]:
        b = batch["text_emb"].shape[0]
        dev = batch["text_emb"].device
        x = {"future": gaussian(self.parts.future_shape(b), generator, dev),
             "latent_action": gaussian((b, len(self.cfg.future), self.cfg.lam_dim), generator, dev)}
        step = lambda x, t: self._run(batch, x["future"], x["latent_action"], t, t)  # noqa: E731
        return euler_sample(step, x, self.cfg.sample_steps)

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, *,
            given_future: Tensor | None = None) -> Tensor:
        """(B, Ta, Da): denoise future + codes, snap the codes to the codebook, decode."""
        self.no_given_future(given_future)
        x = self._sample(batch, generator)
        self.last_future = x["future"]  # imagined beside the codes (the policy may show it)
        return decode_actions(self, batch, self.lam.snap(x["latent_action"]))

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        return self._sample(batch, generator)["future"]


class InverseDynamicsLatentActions(ParadigmBase):
    """Imagine the future, read the latent actions off it with the LAM encoder, decode them."""

    name = "inverse_dynamics"
    integration = "latent_actions"
    settings = ("lam_*",)  # the latent-action keys are still flat in PolicyModelConfig
    backbone_actions = False
    video = True
    imagines_when_acting = True
    acts_from_future = True

    def __init__(self, cfg: PolicyModelConfig, parts: WamParts):
        super().__init__(cfg, parts)
        _build(self)

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        lam = self.lam(frame_pairs(batch), ~batch["future_is_pad"])
        video = future_loss(self, batch, VIDEO_MASK, generator)
        return total(self, lam, video, action_loss(self, batch, lam.codes))

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        return sample_group(self, batch, VIDEO_MASK, "future", generator)

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, *,
            given_future: Tensor | None = None) -> Tensor:
        """(B, Ta, Da): the future (imagined, unless given) -> LAM codes -> actions."""
        future = self.imagine(batch, generator) if given_future is None else given_future
        self.last_future = future  # what the codes were read off (the policy may show it)
        return decode_actions(self, batch, self.lam.quantise(frame_pairs(batch, future)))
