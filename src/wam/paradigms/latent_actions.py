"""Latent actions (LAPA, Genie) as the action integration, for the joint and inverse-dynamics paradigms:
LAPA's third stage, in `wam train`.

Stages 1 and 2 happen in `wam pretrain --latent_actions=true` (wam.models.code_world_model): a
latent-action model (LAM) learns from action-free video one code per consecutive frame pair, then
the backbone learns to predict the frozen LAM's codes beside the video. `wam train --init=RUN`
loads both (`adopt_pretrained`) and fine-tunes a small action decoder: the LAM's codes + proprio
state -> the action chunk (no frame input, so it cannot bypass the codes). The decoder learns on
the frozen LAM's codes of the real frames (the target never moves; the LAM never sees an action)
and its loss skips samples whose actions are missing (`action_is_pad` all True).

What trains in `wam train` (printed at start): by default the decoder alone; with
`--policy.latent_actions.tune_backbone=true` also the backbone, its embedders and the code head (video + code
losses, as pretrained). The LAM never trains here. A paradigm never given a pretrained world model
(the contract tests) trains its backbone too, against a random frozen LAM; `wam train` refuses
latent actions without `--init` (see wam.train).

- joint + latent_actions: the backbone denoises a `latent_action` group (one token per future frame,
  modality "action") beside the future frames, under the pretraining's `CODE_MASK` (the future never
  sees the codes; no proprio token: the backbone sees what it was pretrained on). Acting: denoise
  both, snap the codes to the codebook, decode.
- inverse_dynamics + latent_actions: the LAM encoder *is* an inverse-dynamics model; the backbone only
  imagines the future, the LAM reads the codes off (current frame, imagined future).
"""

from __future__ import annotations

import torch
from torch import Tensor

from wam.errors import ConfigError
from wam.models.code_world_model import CODE_MASK, code_tokens, frame_pairs
from wam.models.groups import VectorTokens, vector_positions
from wam.models.transfer import Loaded
from wam.nn.flow import euler_sample, gaussian, masked_mse
from wam.nn.latent_action import ActionDecoder, LatentActionModel
from wam.paradigms.base import (ParadigmBase, PolicyModelConfig, WamParts, future_loss, keep_mask, noise_group,
                                sample_group)

PRETRAINED = ("lam.", "code_io.")  # a latent-action world model's own modules, beside the shared parts


def _build(p: ParadigmBase) -> None:
    """Give a strategy its frozen LAM and its action decoder; the backbone gets no proprio token."""
    if not isinstance(p.parts, WamParts):
        raise ConfigError("latent actions are pretrained with `wam pretrain --latent_actions=true`, implemented for "
                          "backbone.kind=wam only")
    cfg, la, c = p.cfg, p.cfg.latent_actions, p.parts.tokenizer.cfg.latent_channels
    p.lam = LatentActionModel(c, la.codes, la.dim, la.width, la.beta).requires_grad_(False)
    p.decoder = ActionDecoder(len(cfg.future), la.dim, cfg.state_dim, cfg.chunk, cfg.action_dim)
    p.parts.state_in = None  # proprio reaches the decoder only, as in pretraining (no state token)
    p.tunes_backbone = True  # until `adopt_pretrained` says otherwise


def adopt_pretrained(p: ParadigmBase, state: dict, shared: Loaded, tune_backbone: bool = False) -> tuple[Loaded, str]:
    """Load the world model's LAM and code head (`state`, after the shared parts were loaded by
    `parts.load_world` with result `shared`), each strictly, and freeze all but the decoder (and, with
    `tune_backbone`, the backbone side); returns the load result over the whole policy and a line saying
    what trains."""
    taken = tuple(prefix for prefix in PRETRAINED if hasattr(p, prefix[:-1]))  # inverse dynamics: no code head
    for prefix in taken:
        part = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            getattr(p, prefix[:-1]).load_state_dict(part, strict=True)
        except RuntimeError as exc:  # missing / unexpected keys or other shapes
            raise ConfigError(f"the world model's latent-action model does not fit this policy ({prefix[:-1]}: "
                              f"{str(exc).splitlines()[-1].strip()[:160]})") from None
    p.tunes_backbone = tune_backbone
    for name, q in p.named_parameters():  # the LAM and the tokenizer were frozen from the start
        if not (tune_backbone or name.startswith("decoder.")):
            q.requires_grad_(False)
    unused = [k for k in shared.unexpected_keys if not k.startswith(taken)]
    trains = sorted({n.split(".")[0] if n.split(".")[0] != "parts" else ".".join(n.split(".")[:2])
                     for n, q in p.named_parameters() if q.requires_grad})
    n = sum(q.numel() for q in p.parameters() if q.requires_grad)
    line = (f"latent actions: trains {', '.join(trains)} ({n / 1e6:.3f}M parameters); frozen: lam (pretrained)"
            f"{'' if tune_backbone else ', the backbone and its heads (--policy.latent_actions.tune_backbone=true trains them)'}")
    return Loaded(shared.missing_keys, unused), line


def _freeze_unused(p: ParadigmBase) -> None:
    """No token of the action modality reaches the backbone in inverse dynamics + latent actions: its MoT
    action expert (kept for weight transfer) is frozen, not trained on nothing."""
    if not hasattr(p, "code_io"):
        for name, q in p.parts.backbone.named_parameters():
            if ".experts.action." in name or name.startswith("final_ada.action."):
                q.requires_grad_(False)


def real_codes(p: ParadigmBase, batch: dict) -> Tensor:
    """(B, Tf, D): the frozen LAM's codebook vectors of (current frame, real future frames)."""
    return p.lam.quantise(frame_pairs(batch["obs.latent"], batch["future.latent"])).float()


def decode_actions(p: ParadigmBase, batch: dict, codes: Tensor) -> Tensor:
    """(B, Tf, D) codes -> (B, Ta, Da) actions, given the current proprio state (never the frame)."""
    return p.decoder(codes, batch["obs.state"][:, -1])


def action_loss(p: ParadigmBase, batch: dict, codes: Tensor) -> Tensor:
    """The decoder's loss on the frozen LAM's codes; padded steps and action-free samples (all steps
    padded, or no "action" at all) count for nothing."""
    pred = decode_actions(p, batch, codes)
    if "action" not in batch:
        return pred.sum() * 0.0
    return masked_mse(pred, batch["action"], keep_mask(batch["action_is_pad"], pred))


def total(p: ParadigmBase, action: Tensor, video: Tensor | None = None, code: Tensor | None = None) -> tuple[Tensor, dict]:
    """action_weight * action [+ video_weight * video] [+ code_weight * code], and each as a metric."""
    cfg = p.cfg
    loss, metrics = cfg.action_weight * action, {"action_loss": action.detach()}
    if video is not None:
        loss, metrics["video_loss"] = loss + cfg.video_weight * video, video.detach()
    if code is not None:
        loss, metrics["code_loss"] = loss + cfg.latent_actions.code_weight * code, code.detach()
    return loss, metrics


class JointLatentActions(ParadigmBase):
    """Joint denoising of the future frames and the latent-action codes; actions decoded from the codes."""

    name = "joint"
    integration = "latent_actions"
    settings = ("joint", "latent_actions")
    backbone_actions = False
    video = True
    imagines_when_acting = True

    def __init__(self, cfg: PolicyModelConfig, parts: WamParts):
        super().__init__(cfg, parts)
        _build(self)
        self.code_io = VectorTokens(cfg.latent_actions.dim, cfg.backbone.resolved_width(), out=True)
        self.register_buffer("code_pos", vector_positions(cfg.future), persistent=False)

    def _run(self, batch: dict, future: Tensor, codes: Tensor, t_future: Tensor, t_codes: Tensor) -> dict[str, Tensor]:
        """Velocities of the future (B, Tf, C, h, w) and of the codes (B, Tf, D)."""
        group = code_tokens(self.code_io, codes, t_codes, self.code_pos)
        out = self.parts.run(batch, CODE_MASK, future=(future, t_future), extra=[group])
        return {"future": out["future"], "latent_action": self.code_io.read_out(out["latent_action"]).float()}

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        codes = real_codes(self, batch)  # (B, Tf, D), no gradient: the frozen LAM
        action = action_loss(self, batch, codes)
        if not self.tunes_backbone:
            return total(self, action)
        f = noise_group(batch["future.latent"], generator)
        z = noise_group(codes, generator, None if self.cfg.joint.independent_t else f.t)
        out = self._run(batch, f.x_t, z.x_t, f.t, z.t)
        video = f.loss(out["future"], keep_mask(batch["future_is_pad"], f.x0))
        code = z.loss(out["latent_action"], keep_mask(batch["future_is_pad"], z.x0))
        return total(self, action, video, code)

    def _sample(self, batch: dict, generator: torch.Generator | None) -> dict[str, Tensor]:
        b = batch["text_emb"].shape[0]
        dev = batch["text_emb"].device
        x = {"future": gaussian(self.parts.future_shape(b), generator, dev),
             "latent_action": gaussian((b, len(self.cfg.future), self.cfg.latent_actions.dim), generator, dev)}
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
    settings = ("latent_actions",)
    backbone_actions = False
    video = True
    imagines_when_acting = True
    acts_from_future = True

    def __init__(self, cfg: PolicyModelConfig, parts: WamParts):
        super().__init__(cfg, parts)
        _build(self)
        _freeze_unused(self)

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        action = action_loss(self, batch, real_codes(self, batch))
        if not self.tunes_backbone:
            return total(self, action)
        return total(self, action, future_loss(self, batch, CODE_MASK, generator))

    @torch.no_grad()
    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        return sample_group(self, batch, CODE_MASK, "future", generator)

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None, *,
            given_future: Tensor | None = None) -> Tensor:
        """(B, Ta, Da): the future (imagined, unless given) -> LAM codes -> actions."""
        future = self.imagine(batch, generator) if given_future is None else given_future
        self.last_future = future  # what the codes were read off (the policy may show it)
        return decode_actions(self, batch, self.lam.quantise(frame_pairs(batch["obs.latent"], future)))
