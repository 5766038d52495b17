"""Latent actions in `wam pretrain --latent_actions=true` (LAPA, Genie): the models of its two stages.

Stage 1, `LamStage`: the latent-action model (wam.nn.latent_action) learns from action-free video
alone one code per consecutive frame pair (current frame -> future 1 -> future 2 ...). Its batches
come from windows with no action offsets, so the action column is never read from the dataset, and
its loss refuses a batch that carries actions at all.

Stage 2, `CodeWorldModel`: the video world model, a frozen copy of the stage-1 LAM and a code head.
The backbone denoises the future frames and, beside them, the LAM's quantised codes of the real
frames (stop-gradient through a frozen LAM: the target never moves). `CODE_MASK` says who attends
to whom, here and in the policies of wam.paradigms.latent_actions, so the backbone sees in
`wam train` exactly what it was pretrained on:

    text, obs       see text, obs                           clean (cacheable)
    future          sees text, obs, future                  never the codes: imagining needs none, so
                                                            `wam imagine` on this world model is a trained path
    latent_action   sees text, obs, future, latent_action   the codes are read off the video being denoised

No proprio state anywhere: the codes are predicted from video (and the instruction) alone.

    stage = LamStage(LatentActionModel(channels=8, codes=16, dim=16, width=64))   # trainer: stage.loss(batch)
    wm = CodeWorldModel(WorldModelConfig(), tokenizer, stage.lam, code_weight=1.0)
    loss, metrics = wm.loss(batch)    # video flow loss + code_weight * code flow loss
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wam.errors import ConfigError, WamError
from wam.models.groups import MODALITY, VectorTokens, vector_positions
from wam.models.world_model import VideoWorldModel, WorldModelConfig
from wam.nn.flow import flow_loss, gaussian, interpolate
from wam.nn.latent_action import LatentActionModel
from wam.nn.tokenizer import FrameAutoencoder
from wam.nn.token_groups import GroupMask, TokenGroup

SEEN = {"text", "obs"}
CODE_MASK = GroupMask(allowed={"text": SEEN, "obs": SEEN, "future": SEEN | {"future"},
                               "latent_action": SEEN | {"future", "latent_action"}})


def frame_pairs(obs: Tensor, future: Tensor) -> Tensor:
    """(B, 1+Tf, C, h, w): the current frame (the last obs offset) followed by the future frames."""
    return torch.cat([obs[:, -1:], future], 1)


def code_tokens(io: VectorTokens, codes: Tensor, t: Tensor, pos: Tensor) -> TokenGroup:
    """The `latent_action` group: one token per future frame's code (B, Tf, D), at flow time t (B,)."""
    return TokenGroup("latent_action", io.embed(codes), t, pos, MODALITY["latent_action"])


class LamStage(nn.Module):
    """Stage 1: the LAM on its own, for the trainer (reconstruction + VQ loss on frame pairs)."""

    kind = "wam-latent-action-model"

    def __init__(self, lam: LatentActionModel):
        super().__init__()
        self.lam = lam
        self.register_buffer("seeded", torch.zeros((), dtype=torch.bool))  # codebook seeded from data (checkpointed)

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        if "action" in batch:  # structural: the windows of this stage never hold the action column
            raise WamError("the latent-action model learns from action-free video; its batches must not carry "
                           "actions")
        frames = frame_pairs(batch["obs.latent"], batch["future.latent"])
        if self.training and not self.seeded:  # the first batch places the codebook
            self.lam.seed_codebook(frames)
            self.seeded.fill_(True)
        out = self.lam(frames, ~batch["future_is_pad"])
        return out.loss, {"lam_recon": out.recon.detach(), "code_perplexity": out.perplexity,
                          "codes_used": out.used}


class CodeWorldModel(VideoWorldModel):
    """Stage 2: the video world model that also predicts the frozen LAM's codes (`CODE_MASK`)."""

    extra_groups = ("latent_action",)

    def __init__(self, cfg: WorldModelConfig, tokenizer: FrameAutoencoder, lam: LatentActionModel,
                 code_weight: float = 1.0):
        if cfg.action_chunk:
            raise ConfigError("latent actions stand in for the actions a world model is conditioned on: "
                              "model.action_chunk must be 0 with --latent_actions=true")
        super().__init__(cfg, tokenizer)
        self.lam = lam.requires_grad_(False)  # frozen: stage 1's codes are the target, unchanged
        self.code_weight = code_weight
        self.code_io = VectorTokens(lam.dim, cfg.backbone.resolved_width(), out=True)
        self.register_buffer("code_pos", vector_positions(cfg.future), persistent=False)
        self.mask = GroupMask(allowed=CODE_MASK.allowed, causal_time={"future"} if cfg.causal_future else set())

    @torch.no_grad()
    def codes(self, obs: Tensor, future: Tensor) -> Tensor:
        """(B, Tf, D): the frozen LAM's codebook vectors of (current frame, future frames)."""
        return self.lam.quantise(frame_pairs(obs, future)).float()

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        """Flow matching on the future frames and on their codes, at one flow time; padded frames left out."""
        obs, x0 = self._latents(batch, "obs"), self._latents(batch, "future")
        noise, t, drop = self.draw(x0, generator)
        codes = self.codes(obs, x0)
        code_noise = gaussian(codes.shape, generator, codes.device, codes.dtype)
        group = code_tokens(self.code_io, interpolate(codes, code_noise, t), t, self.code_pos)
        out = self.run_groups(interpolate(x0, noise, t), t, obs, batch["text_emb"], None, drop, extra=[group])
        v = self.future_io.read_out(out["future"], len(self.cfg.future), self.grid, self.grid).float()
        keep = ~batch["future_is_pad"]  # (B, Tf)
        video = flow_loss(v, x0, noise, keep[:, :, None, None, None].expand_as(x0))
        code = flow_loss(self.code_io.read_out(out["latent_action"]).float(), codes, code_noise,
                         keep[:, :, None].expand_as(codes))
        return video + self.code_weight * code, {"video_loss": video.detach(), "code_loss": code.detach(),
                                                 "t_mean": float(t.mean())}
