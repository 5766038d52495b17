"""The video world model: from current frame(s) and an instruction (and optionally actions),
denoise the future frames. What `wam pretrain` trains and every WAM variant starts from.

Token groups (see wam.models.groups) and who attends to whom:

    text    1 token     clean     sees text, obs, action
    obs     To frames   clean     sees text, obs, action        (never the noisy future: cacheable)
    action  Ta tokens   clean     sees text, obs, action        (only with `action_chunk > 0`)
    future  Tf frames   noised    sees everything (optionally causal across future frames)

Training is flow matching on the future latents (`x_t = (1-t) x0 + t noise`, predict
`noise - x0`), one t per sample; the frozen tokenizer's normalised latents are the data. Under
Mixture-of-Transformers `obs` and `future` share the "video" weights, `text` and `action` have
their own. Imagining = Euler integration from noise (the clean groups' keys/values computed once,
`clean_cache`, not at every step), then decoding the latents to frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from wam.data.text import EMBED_DIM
from wam.models.groups import MODALITY, LatentPatches, TextToken, VectorTokens, frame_positions, vector_positions
from wam.nn.flow import euler_sample, flow_loss, gaussian, interpolate, sample_time
from wam.nn.tokenizer import FrameAutoencoder
from wam.nn.token_groups import GroupMask, TokenGroup
from wam.nn.transformer import Backbone, BackboneConfig, KVCache
from wam.errors import ConfigError


@dataclass
class WorldModelConfig:
    """Architecture and objective of the video world model."""

    backbone: BackboneConfig = field(default_factory=lambda: BackboneConfig(depth=4))
    patch: int = 2  # latent patch size (tokens per frame = (h/patch) * (w/patch))
    obs: tuple[int, ...] = (0,)  # frame offsets of the conditioning frames
    future: tuple[int, ...] = (4, 8, 12, 16)  # frame offsets of the predicted frames
    action_chunk: int = 0  # > 0: also condition on the next `action_chunk` actions (a world model)
    action_dim: int = 4
    causal_future: bool = False
    time_sampling: str = "logit_normal"
    text_dropout: float = 0.1  # train the "no instruction" token too (classifier-free guidance)
    sample_steps: int = 10

    def check(self) -> None:
        self.backbone.check()
        if not self.future or min(self.future) <= 0 or max(self.obs) > 0:
            raise ConfigError(f"model.future offsets must be > 0 and model.obs <= 0, got {self.future} / {self.obs}")
        if self.time_sampling not in ("logit_normal", "uniform"):
            raise ConfigError(f"model.time_sampling must be logit_normal or uniform, got {self.time_sampling}")


class FrameLatents:
    """Frames <-> normalised latents through `self.tokenizer` (every world model, ours or diffusers')."""

    tokenizer: nn.Module

    @torch.no_grad()
    def encode(self, frames: Tensor) -> Tensor:
        """(B, T, 3, H, W) uint8 frames -> (B, T, C, h, w) normalised latents."""
        return self.tokenizer.normalize(self.tokenizer.encode(frames))

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        """(B, T, C, h, w) normalised latents -> (B, T, 3, H, W) float frames in [0, 1]."""
        return self.tokenizer.decode(self.tokenizer.denormalize(latents.float()))

    def _latents(self, batch: dict, name: str) -> Tensor:
        return batch[f"{name}.latent"] if f"{name}.latent" in batch else self.encode(batch[f"{name}.image"])

    # shapes, from `self.grid` (latent h = w) and `self.future_times` (the future group's frame offsets)
    def frame_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of one latent frame."""
        return (self.tokenizer.cfg.latent_channels, self.grid, self.grid)

    def future_shape(self, b: int) -> tuple[int, ...]:
        """(B, Tf, C, h, w) of the future group (a policy's action / state frames included)."""
        return (b, len(self.future_times), *self.frame_shape())


class VideoWorldModel(FrameLatents, nn.Module):
    """Frozen frame tokenizer + transformer backbone over text/obs/(action)/future token groups."""

    kind = "wam-world-model"
    extra_groups: tuple[str, ...] = ()  # a subclass's own token groups (their MoT experts are built too)

    def __init__(self, cfg: WorldModelConfig, tokenizer: FrameAutoencoder, *, groups: Sequence[str] = (),
                 video: bool = True):
        """`groups`: token groups beyond the world model's whose MoT experts the backbone also builds (a
        policy's state and actions, wam.paradigms.base.WamParts); `video=False` leaves out the future
        head (a policy that never predicts frames)."""
        super().__init__()
        cfg.check()
        self.cfg = cfg
        self.tokenizer = tokenizer.requires_grad_(False).eval()
        width = cfg.backbone.resolved_width()
        c = tokenizer.cfg.latent_channels
        self.grid = tokenizer.cfg.image_size // tokenizer.cfg.downsample  # latent h = w
        self.future_times = tuple(cfg.future)
        names = ["text", "obs", "future"] + (["action"] if cfg.action_chunk else []) + [*self.extra_groups, *groups]
        self.backbone = Backbone(cfg.backbone, sorted({MODALITY[n] for n in names}))
        self.text = TextToken(EMBED_DIM, width)
        self.obs_in = LatentPatches(c, cfg.patch, width)
        self.future_io = LatentPatches(c, cfg.patch, width, out=True) if video else None
        self.action_in = VectorTokens(cfg.action_dim, width) if cfg.action_chunk else None
        rows = self.grid // cfg.patch
        self.register_buffer("obs_pos", frame_positions(cfg.obs, rows, rows), persistent=False)
        self.register_buffer("future_pos", frame_positions(cfg.future, rows, rows), persistent=False)
        self.register_buffer("action_pos", vector_positions(range(cfg.action_chunk)), persistent=False)
        self.register_buffer("text_pos", torch.zeros(1, 3, dtype=torch.long), persistent=False)
        clean = {"text", "obs"} | ({"action"} if cfg.action_chunk else set())  # see only each other: cacheable
        self.mask = GroupMask(allowed={g: clean for g in clean},
                              causal_time={"future"} if cfg.causal_future else set())

    # -- the network -----------------------------------------------------------------------
    def velocity(self, x_t: Tensor, t: Tensor, obs: Tensor, text: Tensor, actions: Tensor | None = None,
                 drop_text: Tensor | None = None, cache: KVCache | None = None) -> Tensor:
        """Predicted velocity of the future latents (B, Tf, C, h, w) at flow time t (B,); with a `cache`
        (from `clean_cache`) the clean groups are read from it and obs/text/actions are not used."""
        out = self.run_groups(x_t, t, obs, text, actions, drop_text, cache=cache)
        return self.future_io.read_out(out["future"], len(self.cfg.future), self.grid, self.grid).float()

    def clean_groups(self, obs: Tensor, text: Tensor, actions: Tensor | None = None,
                     drop_text: Tensor | None = None) -> list[TokenGroup]:
        """The conditioning groups (text, obs, and actions if conditioned on them): they see only each other."""
        groups = [TokenGroup("text", self.text(text, drop_text), None, self.text_pos, "text"),
                  TokenGroup("obs", self.obs_in.embed(obs), None, self.obs_pos, "video")]
        if self.action_in is not None:
            if actions is None:
                raise ConfigError("this world model is conditioned on actions: pass `actions` (B, Ta, Da)")
            groups.append(TokenGroup("action", self.action_in.embed(actions), None, self.action_pos, "action"))
        return groups

    def clean_cache(self, obs: Tensor, text: Tensor, actions: Tensor | None = None,
                    drop_text: Tensor | None = None) -> KVCache:
        """Every layer's keys/values of the clean groups, computed once for all the Euler steps of a sample."""
        return self.backbone.prefill(self.clean_groups(obs, text, actions, drop_text), self.mask)

    def run_groups(self, x_t: Tensor, t: Tensor, obs: Tensor, text: Tensor, actions: Tensor | None = None,
                   drop_text: Tensor | None = None, extra: Sequence[TokenGroup] = (),
                   cache: KVCache | None = None) -> dict[str, Tensor]:
        """The backbone's output tokens of every group; `extra`: a subclass's own groups, already embedded."""
        clean = [] if cache is not None else self.clean_groups(obs, text, actions, drop_text)
        future = TokenGroup("future", self.future_io.embed(x_t), t, self.future_pos, "video")
        return self.backbone([*clean, future, *extra], self.mask, cache=cache)

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        """Flow-matching loss on the future frames; padded future frames are left out."""
        obs, x0 = self._latents(batch, "obs"), self._latents(batch, "future")
        noise, t, drop = self.draw(x0, generator)
        actions = batch.get("action") if self.action_in is not None else None
        v = self.velocity(interpolate(x0, noise, t), t, obs, batch["text_emb"], actions, drop)
        keep = ~batch["future_is_pad"][:, :, None, None, None]  # (B, Tf, 1, 1, 1)
        loss = flow_loss(v, x0, noise, keep.expand_as(x0))
        return loss, {"t_mean": float(t.mean())}

    def draw(self, x0: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor | None]:
        """A training batch's noise (like x0), flow time t (B,) and text-dropout flags (B,) (None in eval)."""
        b = x0.shape[0]
        # noise drawn on the generator's device (a seeded CPU generator: the same noise on any device)
        noise = gaussian(x0.shape, generator, x0.device, x0.dtype)
        t = sample_time(b, generator=generator, kind=self.cfg.time_sampling, device=x0.device)
        drop = None
        if self.training:
            u = torch.rand(b, generator=generator, device=generator.device if generator else x0.device)
            drop = u.to(x0.device) < self.cfg.text_dropout
        return noise, t, drop

    @torch.no_grad()
    def imagine_latents(self, obs: Tensor, text: Tensor, actions: Tensor | None = None, steps: int | None = None,
                        guidance: float = 1.0, generator: torch.Generator | None = None,
                        noise: Tensor | None = None, kv_cache: bool = True) -> Tensor:
        """Sample future latents (B, Tf, C, h, w) given obs latents and text embeddings, from `noise`
        (B, Tf, C, h, w) when given (e.g. the same noise for every candidate a planner compares), else drawn.
        `kv_cache`: the clean groups' keys/values once, not at every Euler step (the same result)."""
        b, steps = obs.shape[0], steps or self.cfg.sample_steps
        text, actions = text.to(obs.device), None if actions is None else actions.to(obs.device)
        x1 = gaussian(self.future_shape(b), generator, obs.device) if noise is None else noise.to(obs.device)
        null = torch.ones(b, dtype=torch.bool, device=obs.device)
        use = kv_cache and steps > 1
        cond_cache = self.clean_cache(obs, text, actions) if use else None
        null_cache = self.clean_cache(obs, text, actions, null) if use and guidance != 1.0 else None

        def v(x: Tensor, t: Tensor) -> Tensor:
            cond = self.velocity(x, t, obs, text, actions, cache=cond_cache)
            if guidance == 1.0:
                return cond
            uncond = self.velocity(x, t, obs, text, actions, null, cache=null_cache)
            return uncond + guidance * (cond - uncond)

        return euler_sample(v, x1, steps)

    @torch.no_grad()
    def imagine(self, frames: Tensor, text: Tensor, **kwargs) -> Tensor:
        """(B, To, 3, H, W) uint8 obs frames + (B, 384) text -> (B, Tf, 3, H, W) imagined frames in [0, 1]."""
        self.eval()
        return self.decode(self.imagine_latents(self.encode(frames), text, **kwargs))  # on the model's device
