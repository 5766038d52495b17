"""The model family's parts on a diffusers backbone: what `WamParts` is on wam's own transformer.

`BackboneParts` has WamParts' interface (`run`, `load_world`, `action_shape`, `frame_shape`,
`future_shape`, `tokenizer`, `grid`, `future_times`, `action_io`), so every paradigm runs on it
unchanged; `load_world` takes a BackboneWorldModel's weights by structure (wam.models.transfer). The video
groups (obs, future, the latent action frame) go into the backbone as latents, through its own patch
embedding, RoPE and timestep conditioning; state and actions are wam tokens (a linear map per step
plus a learned per-step embedding) in the same joint attention, under the paradigm's GroupMask.
Frame times are ranks: the sorted frame offsets of the sample (obs and future) are latent frames
0, 1, 2, ... of one clip, as the video model saw clips in pretraining.

    parts = BackboneParts(cfg, tokenizer)           # cfg.backbone.kind = "wan" | "cosmos"
    out = parts.run(batch, mask, future=(x_t, t), action=(a_t, t))   # {"future": ..., "action": ...}
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from wam.backbones.base import Group, VideoGroup
from wam.backbones.build import make_backbone, text_input
from wam.errors import ConfigError
from wam.models.groups import VectorTokens, next_offset
from wam.models.transfer import Loaded, load_world
from wam.models.world_model import FrameLatents
from wam.nn.token_groups import GroupMask, TokenGroup


def frame_ranks(*offsets: Sequence[int]) -> dict[int, int]:
    """Frame offset -> its rank among all offsets in use (the latent frame index in the clip)."""
    return {o: i for i, o in enumerate(sorted({o for group in offsets for o in group}))}


class StepTokens(nn.Module):
    """(B, T, D) vectors -> (B, T, width) tokens with a learned embedding per step; read-out optional."""

    def __init__(self, dim: int, steps: int, width: int, out: bool = False):
        super().__init__()
        self.io = VectorTokens(dim, width, out=out)
        self.step = nn.Parameter(torch.zeros(steps, width))

    def embed(self, x: Tensor) -> Tensor:
        return self.io.embed(x) + self.step[: x.shape[1]].to(x.dtype)

    def read_out(self, tokens: Tensor) -> Tensor:
        return self.io.read_out(tokens)


class BackboneParts(FrameLatents, nn.Module):
    """VAE tokenizer + diffusers backbone + wam's state/action tokens; `run` as WamParts.run."""

    def __init__(self, cfg, tokenizer: nn.Module, video: bool = True, actions: bool = True,
                 action_frame: bool = False):
        super().__init__()
        cfg.check()
        if action_frame and not video:
            raise ConfigError("actions written into a latent frame need the future (video) group")
        if cfg.aux.names():
            raise ConfigError(f"policy.aux.targets needs wam's own backbone for now (backbone.kind=wam), not "
                              f"{cfg.backbone.kind}: its head reads one frame's tokens of the obs group")
        self.cfg = cfg
        self.tokenizer = tokenizer.requires_grad_(False).eval()
        self.backbone = make_backbone(cfg.backbone, tokenizer, getattr(cfg, "lora", None))
        self.text_in = text_input(cfg.backbone, self.backbone)
        width = self.backbone.width
        cfg.backbone.width = width  # what strategies read as `backbone.resolved_width()` (their own token groups)
        self.grid = tokenizer.cfg.latent_size
        self.future_times = (*cfg.future, next_offset(cfg.future)) if action_frame else tuple(cfg.future)
        self.ranks = frame_ranks(cfg.obs, self.future_times)
        self.state_in = StepTokens(cfg.state_dim, len(cfg.obs), width)
        tokens = actions and not action_frame
        self.action_io = StepTokens(cfg.action_dim, cfg.chunk, width, out=True) if tokens else None

    def prefill(self, batch: dict, mask: GroupMask, future: tuple[Tensor, Tensor] | None = None) -> None:
        """No K/V cache across sampling steps on a diffusers backbone (yet): every step runs every group."""
        return None

    def run(self, batch: dict, mask: GroupMask, future: tuple[Tensor, Tensor] | None = None,
            action: tuple[Tensor, Tensor] | None = None, extra: Sequence[TokenGroup] = (),
            cache: None = None) -> dict[str, Tensor]:
        """Velocities of the given (x_t, t) groups; `extra` groups come back as raw (B, N, width) tokens.
        `cache` is accepted for WamParts' signature and is always None here (see `prefill`)."""
        groups: list[VideoGroup | Group] = [
            VideoGroup("obs", batch["obs.latent"], None, [self.ranks[o] for o in self.cfg.obs]),
            Group("state", self.state_in.embed(batch["obs.state"]), None, "state")]
        if future is not None:
            groups.append(VideoGroup("future", future[0], future[1], [self.ranks[o] for o in self.future_times]))
        if action is not None:
            groups.append(Group("action", self.action_io.embed(action[0]), action[1], "action"))
        groups += [Group(g.name, g.tokens, g.t, g.kind) for g in extra]
        out = self.backbone(groups, mask, self.text_in(batch["text_emb"]))
        result = {g.name: out[g.name] for g in extra}
        if future is not None:
            result["future"] = out["future"].float()
        if action is not None:
            result["action"] = self.action_io.read_out(out["action"]).float()
        return result

    POLICY_ONLY = ("state_in", "action_io")  # the policy's own modules: fresh at `--init`

    def extension(self, key: str, other: dict) -> bool:
        """`key` is a LoRA adapter's, or the action expert's (MoT) where `other` (a state dict) has none."""
        expert = key.startswith("backbone.action_blocks.")
        return ".lora_" in key or (expert and not any(k.startswith("backbone.action_blocks.") for k in other))

    def _world_names(self, state: dict) -> dict:
        """Weights saved without LoRA (a world model) under the LoRA-wrapped layers' names
        (`x.weight` -> `x.base_layer.weight` where only the latter exists)."""
        own = self.state_dict(keep_vars=True)
        renamed = {}
        for k, v in state.items():
            head, _, leaf = k.rpartition(".")
            wrapped = f"{head}.base_layer.{leaf}"
            renamed[wrapped if k not in own and wrapped in own else k] = v
        return renamed

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As nn.Module's, also taking weights saved without LoRA into the LoRA-wrapped layers."""
        return super().load_state_dict(self._world_names(state_dict), strict=strict, assign=assign)

    def load_world(self, state: dict[str, Tensor], source: str = "the world model") -> Loaded:
        """A BackboneWorldModel's weights, strictly and by structure (wam.models.transfer); an action expert
        the world model has not got restarts as a copy of the loaded video blocks (`policy.action_expert=copy`)."""
        state = self._world_names(state)
        loaded = load_world(self, state, source)
        if self.cfg.action_expert == "copy" and not any(k.startswith("backbone.action_blocks.") for k in state):
            self.backbone.init_action_expert()
        return loaded

    def action_shape(self, b: int) -> tuple[int, ...]:
        return (b, self.cfg.chunk, self.cfg.action_dim)
