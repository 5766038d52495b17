"""The VideoBackbone protocol: token groups in, tokens out, masks as data.

A large pretrained video transformer (diffusers' Wan or Cosmos) runs over wam's token groups:

    video groups   (B, T, C, h, w) latents, through the backbone's OWN patch embedding, 3-axis RoPE
                   (time = the frame's rank among all frames in the sample) and timestep conditioning;
                   they come back as (B, T, C, h, w) velocities through the backbone's own read-out
    token groups   (B, N, width) tokens made by wam (proprio state, actions, a strategy's extra group);
                   they get the same per-token timestep conditioning and come back as (B, N, width)
    text           (B, L, text_dim) precomputed embeddings, read by the backbone's cross-attention

`GroupMask` (wam.nn.transformer) says which group sees which in self-attention; diffusers' blocks
have no mask argument, so `MaskSlot` + `GroupMaskProcessor` (diffusers' attention-processor API)
carry the (N, N) mask to every self-attention without touching the blocks. Flow time t in [0, 1]
is passed to diffusers as `1000 * t` (its flow-matching timestep scale); a clean group has t = 0.

    net = WanBackbone(model)                                     # wam.backbones.wan
    out = net([VideoGroup("obs", obs, None, (0,)), VideoGroup("future", x_t, t, (1, 2))],
              GroupMask.full(), text)                            # {"obs": (B,1,C,h,w), "future": ...}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from wam.errors import ConfigError
from wam.nn.token_groups import GroupMask, TokenGroup

TIMESTEP_SCALE = 1000.0  # diffusers' flow-matching timesteps are sigma * 1000


@dataclass
class VideoGroup:
    """Latent frames (B, T, C, h, w) with their frame time ranks (T,) and a flow time (B,) or None."""

    name: str
    latents: Tensor
    t: Tensor | None
    frames: Sequence[int]


@dataclass
class Group:
    """wam-made tokens (B, N, width) with a flow time (B,) or None; `kind` names the modality (state,
    action, ...; under Mixture-of-Transformers every token group runs on the action expert)."""

    name: str
    tokens: Tensor
    t: Tensor | None
    kind: str = "action"


class VideoBackbone(Protocol):
    """What BackboneParts and the backbone world model need from a wrapped video transformer."""

    width: int  # hidden size of the token groups
    latent_channels: int  # channels of a latent frame out (and in, as wam feeds them)
    in_channels: int
    text_dim: int  # width of the text embeddings the cross-attention reads
    patch: tuple[int, int]  # spatial patch size (h, w)

    def __call__(self, groups: Sequence[VideoGroup | Group], mask: GroupMask, text: Tensor) -> dict[str, Tensor]: ...


class MaskSlot:
    """The current layer call's (N, N) bool attention mask (True = may attend), shared by the processors.
    `call` sets it right before each block runs, so a block recomputed by activation checkpointing during
    the backward pass (after other forwards changed the slot) gets its own mask back."""

    def __init__(self) -> None:
        self.mask: Tensor | None = None

    def call(self, mask: Tensor | None, layer, *args):
        self.mask = mask
        return layer(*args)


class GroupMaskProcessor:
    """Wraps a diffusers attention processor: passes the slot's mask where the block passes none."""

    def __init__(self, inner, slot: MaskSlot):
        self.inner, self.slot = inner, slot

    # explicit names: diffusers' `Attention` drops keyword arguments its processor does not name
    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None,
                 image_rotary_emb=None):
        if attention_mask is None and encoder_hidden_states is None and self.slot.mask is not None:
            attention_mask = self.slot.mask[None, None].to(hidden_states.device)  # (1, 1, N, N): never read as (B, N)
        if image_rotary_emb is not None:  # Cosmos's processors
            return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask,
                              image_rotary_emb=image_rotary_emb)
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)  # Wan's


def install_mask_processors(attentions: Sequence[nn.Module]) -> MaskSlot:
    """Give every self-attention module a GroupMaskProcessor around its own processor (once: a model
    wrapped twice keeps one slot, so both wrappers' masks reach it)."""
    if all(isinstance(a.processor, GroupMaskProcessor) for a in attentions) and attentions:
        return attentions[0].processor.slot
    slot = MaskSlot()
    for attn in attentions:
        attn.set_processor(GroupMaskProcessor(attn.processor, slot))
    return slot


def flow_timesteps(t: Tensor | None, b: int, device: torch.device) -> Tensor:
    """(B,) diffusers timesteps of a group (a clean group: 0)."""
    if t is None:
        return torch.zeros(b, device=device)
    return (t.to(device).float() * TIMESTEP_SCALE).expand(b)


def group_mask(groups: Sequence[VideoGroup | Group], sizes: Sequence[int], mask: GroupMask,
               times: Sequence[Tensor]) -> Tensor | None:
    """(N, N) bool mask over the joint sequence (None when everything sees everything)."""
    shells = [TokenGroup(g.name, torch.empty(0, n, 0), None, torch.stack([tm, tm * 0, tm * 0], -1))
              for g, n, tm in zip(groups, sizes, times)]
    built = mask.build(shells)
    return None if bool(built.all()) else built


def split_groups(x: Tensor, groups: Sequence[VideoGroup | Group], sizes: Sequence[int],
                 read_out: Callable[[Tensor, torch.Size], Tensor]) -> dict[str, Tensor]:
    """(B, N, D) tokens of the concatenated groups -> {name: tokens}; a video group's through
    `read_out(tokens, latents.shape)` (the backbone's own unpatchify)."""
    out, start = {}, 0
    for g, n in zip(groups, sizes):
        part = x[:, start:start + n]
        out[g.name] = read_out(part, g.latents.shape) if isinstance(g, VideoGroup) else part
        start += n
    return out


def expand_per_token(per_group: Tensor, sizes: Sequence[int]) -> Tensor:
    """(B, G, ...) one value per group -> (B, N, ...) one per token."""
    return torch.cat([per_group[:, i:i + 1].expand(-1, n, *per_group.shape[2:]) for i, n in enumerate(sizes)], 1)


def check_text(text: Tensor, text_dim: int) -> Tensor:
    """(B, D) or (B, L, D) text embeddings -> (B, L, D); the width must be the backbone's."""
    text = text[:, None] if text.dim() == 2 else text
    if text.dim() != 3 or text.shape[-1] != text_dim:
        raise ConfigError(f"text embeddings are {tuple(text.shape)}, the backbone's cross-attention reads width "
                          f"{text_dim} (the transformer config's text_dim): set --policy.backbone.text_adapter=true "
                          f"(a learned projection) or use an encoder of that width")
    return text


def frame_grid(groups: Sequence[VideoGroup | Group]) -> tuple[int, int, int]:
    """(frames, h, w) of the RoPE grid the video groups need (frames = the highest rank + 1)."""
    video = [g for g in groups if isinstance(g, VideoGroup)]
    if not video:
        return 1, 1, 1
    h, w = video[0].latents.shape[-2:]
    return max(max(g.frames) for g in video) + 1, h, w


def grid_index(frames: Sequence[int], rows: int, cols: int, device: torch.device) -> Tensor:
    """(T*rows*cols,) indices of a video group's patch tokens into a (frames, rows, cols) grid."""
    f = torch.as_tensor(list(frames), dtype=torch.long, device=device)
    return (f[:, None] * rows * cols + torch.arange(rows * cols, device=device)[None]).reshape(-1)


def token_time(groups: Sequence[VideoGroup | Group], sizes: Sequence[int], patches: int, device) -> list[Tensor]:
    """Per group (N,) frame ranks of its tokens (token groups: 0), for causal-in-time masks."""
    out = []
    for g, n in zip(groups, sizes):
        if isinstance(g, VideoGroup):
            out.append(torch.as_tensor(list(g.frames), device=device).repeat_interleave(patches))
        else:
            out.append(torch.zeros(n, dtype=torch.long, device=device))
    return out


def frame_patches(groups: Sequence[VideoGroup | Group], patch: tuple[int, int]) -> int:
    """Tokens per latent frame (1 when there is no video group)."""
    frames, h, w = frame_grid(groups)
    return (h // patch[0]) * (w // patch[1]) if any(isinstance(g, VideoGroup) for g in groups) else 1
