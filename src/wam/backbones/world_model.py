"""The video world model on a diffusers backbone: what `wam pretrain --model.backbone.kind=wan|cosmos` trains.

Same objective and interface as wam.models.world_model.VideoWorldModel (`loss`, `imagine_latents`,
`imagine`, `encode`, `decode`): flow matching on the future latents given the clean obs latents,
the instruction and optionally the next actions. Its parameter names (`backbone.*`, `text_in.*`)
are BackboneParts', so `wam train --init` starts a policy from it by structure (BackboneParts.load_world). A dropped
instruction (classifier-free guidance) is a zero text embedding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wam.backbones.base import Group, VideoGroup
from wam.backbones.build import make_backbone, text_input
from wam.backbones.parts import StepTokens, frame_ranks
from wam.errors import ConfigError
from wam.models.world_model import FrameLatents
from wam.nn.flow import euler_sample, flow_loss, interpolate, sample_time
from wam.nn.token_groups import GroupMask


class BackboneWorldModel(FrameLatents, nn.Module):
    kind = "wam-world-model"

    def __init__(self, cfg, tokenizer: nn.Module):
        super().__init__()
        cfg.check()
        self.cfg = cfg
        self.tokenizer = tokenizer.requires_grad_(False).eval()
        self.backbone = make_backbone(cfg.backbone, tokenizer)
        self.text_in = text_input(cfg.backbone, self.backbone)
        self.grid = tokenizer.cfg.latent_size
        self.future_times = tuple(cfg.future)
        self.ranks = frame_ranks(cfg.obs, cfg.future)
        self.action_in = StepTokens(cfg.action_dim, cfg.action_chunk, self.backbone.width) if cfg.action_chunk else None
        clean = {"text", "obs", "action"}
        self.mask = GroupMask(allowed={g: clean for g in clean}, causal_time={"future"} if cfg.causal_future else set())

    def velocity(self, x_t: Tensor, t: Tensor, obs: Tensor, text: Tensor, actions: Tensor | None = None,
                 drop_text: Tensor | None = None) -> Tensor:
        """Predicted velocity of the future latents (B, Tf, C, h, w) at flow time t (B,)."""
        text = self.text_in(text)
        if drop_text is not None:
            text = torch.where(drop_text[:, None], torch.zeros_like(text), text)
        groups = [VideoGroup("obs", obs, None, [self.ranks[o] for o in self.cfg.obs]),
                  VideoGroup("future", x_t, t, [self.ranks[o] for o in self.cfg.future])]
        if self.action_in is not None:
            if actions is None:
                raise ConfigError("this world model is conditioned on actions: pass `actions` (B, Ta, Da)")
            groups.append(Group("action", self.action_in.embed(actions), None, "action"))
        return self.backbone(groups, self.mask, text)["future"].float()

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        obs, x0 = self._latents(batch, "obs"), self._latents(batch, "future")
        b = x0.shape[0]
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        t = sample_time(b, generator=generator, kind=self.cfg.time_sampling)
        drop = torch.rand(b, generator=generator) < self.cfg.text_dropout if self.training else None
        actions = batch.get("action") if self.action_in is not None else None
        v = self.velocity(interpolate(x0, noise, t), t, obs, batch["text_emb"], actions, drop)
        keep = ~batch["future_is_pad"][:, :, None, None, None]  # (B, Tf, 1, 1, 1)
        return flow_loss(v, x0, noise, keep.expand_as(x0)), {"t_mean": float(t.mean())}

    @torch.no_grad()
    def imagine_latents(self, obs: Tensor, text: Tensor, actions: Tensor | None = None, steps: int | None = None,
                        guidance: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        b = obs.shape[0]
        x1 = torch.randn(self.future_shape(b), generator=generator)
        null = torch.ones(b, dtype=torch.bool)

        def v(x: Tensor, t: Tensor) -> Tensor:
            cond = self.velocity(x, t, obs, text, actions)
            if guidance == 1.0:
                return cond
            return (u := self.velocity(x, t, obs, text, actions, null)) + guidance * (cond - u)

        return euler_sample(v, x1, steps or self.cfg.sample_steps)

    @torch.no_grad()
    def imagine(self, frames: Tensor, text: Tensor, **kwargs) -> Tensor:
        self.eval()
        return self.decode(self.imagine_latents(self.encode(frames), text, **kwargs))
