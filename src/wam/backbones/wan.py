"""wam's token groups on diffusers' `WanTransformer3DModel` (Wan 2.1 and 2.2 layouts), weights as they are.

The blocks, patch embedding, RoPE tables, timestep/text embedder and output head are the model's own
modules, called as diffusers defines them; wam only lays out the joint sequence:

    video groups  -> model.patch_embedding (Conv3d) -> tokens; RoPE rows of model.rope at (rank, row, col)
    token groups  -> as given (B, N, width); RoPE at (0, 0, 0) (wam adds learned per-step embeddings)
    t per group   -> model.condition_embedder (per-token timesteps, the Wan 2.2 TI2V path) -> adaLN
    text (B,L,D)  -> model.condition_embedder's text projection -> every block's cross-attention
    blocks        -> block(x, text, temb, rope) unchanged; the GroupMask reaches self-attention through
                     a GroupMaskProcessor (wam.backbones.base)
    read-out      -> model.norm_out + scale_shift_table + proj_out, unpatchified per video group

Mixture-of-Transformers (`mot=True`, Fast-WAM style): the token groups (state, actions) get an action
expert beside the video blocks: one more WanTransformerBlock per layer (initialised as a copy of the
video block), its own adaLN table, norms, QKV, output projection, cross-attention and FFN, and ONE
self-attention over the video and action tokens together (`mot_layer`), under the same GroupMask.

With one video group holding the whole clip at one t and no mask this is exactly
`WanTransformer3DModel.forward` (tests/backbones/test_wan.py checks it to 1e-5).
"""

from __future__ import annotations

from collections.abc import Sequence

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from wam.backbones.base import (Group, VideoGroup, check_text, expand_per_token, flow_timesteps, frame_grid, split_groups,
                                frame_patches, grid_index, group_mask, install_mask_processors, token_time)
from wam.errors import ConfigError
from wam.nn.token_groups import GroupMask


class WanBackbone(nn.Module):
    """wam token groups -> diffusers' WanTransformer3DModel -> velocities (video) / tokens (other groups)."""

    def __init__(self, model: nn.Module, checkpointing: bool = False, mot: bool = False):
        super().__init__()
        cfg = model.config
        if tuple(cfg.patch_size)[0] != 1:
            raise ConfigError(f"transformer config patch_size={tuple(cfg.patch_size)}: wam needs a temporal patch of 1 "
                              f"(each latent frame its own tokens)")
        self.model, self.checkpointing = model, checkpointing
        self.width = cfg.num_attention_heads * cfg.attention_head_dim
        self.latent_channels, self.text_dim = cfg.out_channels or cfg.in_channels, cfg.text_dim
        self.in_channels = cfg.in_channels
        self.patch = tuple(cfg.patch_size)[1:]
        self.slot = install_mask_processors([b.attn1 for b in model.blocks])
        self.action_blocks = copy.deepcopy(model.blocks) if mot else None  # the action expert (MoT)

    def init_action_expert(self) -> None:
        """(Re)start the action expert as a copy of the video blocks (after loading video weights)."""
        if self.action_blocks is None:
            return
        video = self.model.blocks.state_dict()  # LoRA-wrapped layers keep the video weights in `base_layer`
        source = {k: video.get(k, video.get(f"{k.rpartition('.')[0]}.base_layer.{k.rpartition('.')[2]}"))
                  for k in self.action_blocks.state_dict()}
        self.action_blocks.load_state_dict(source)

    def video_blocks(self) -> list[nn.Module]:
        return list(self.model.blocks)

    def _embed(self, g: VideoGroup | Group) -> Tensor:
        if isinstance(g, Group):
            return g.tokens
        x = self.model.patch_embedding(g.latents.transpose(1, 2))  # (B, C, T, h, w) -> (B, D, T, hp, wp)
        return x.flatten(2).transpose(1, 2)  # (B, T*hp*wp, D)

    def _rope(self, groups: Sequence[VideoGroup | Group], sizes: Sequence[int], device) -> tuple[Tensor, Tensor]:
        frames, h, w = frame_grid(groups)
        ph, pw = self.patch
        cos, sin = self.model.rope(torch.empty(1, 1, frames, h, w, device=device))  # (1, F*hp*wp, 1, Dh)
        idx = torch.cat([grid_index(g.frames, h // ph, w // pw, device) if isinstance(g, VideoGroup)
                         else torch.zeros(n, dtype=torch.long, device=device) for g, n in zip(groups, sizes)])
        return cos[:, idx], sin[:, idx]

    def forward(self, groups: Sequence[VideoGroup | Group], mask: GroupMask, text: Tensor) -> dict[str, Tensor]:
        m = self.model
        text = check_text(text, self.text_dim)
        if self.action_blocks is not None:  # MoT: one slice per expert, the video tokens first
            groups = sorted(groups, key=lambda g: not isinstance(g, VideoGroup))
        tokens = [self._embed(g) for g in groups]
        sizes = [x.shape[1] for x in tokens]
        x = torch.cat(tokens, 1).contiguous()  # (B, N, D)
        b, dev = x.shape[0], x.device
        steps = torch.stack([flow_timesteps(g.t, b, dev) for g in groups], 1)  # (B, G)
        temb, proj, context, _ = m.condition_embedder(steps.flatten(), text.to(x.dtype), None,
                                                      timestep_seq_len=len(groups))
        temb = expand_per_token(temb, sizes)  # (B, N, D)
        proj = expand_per_token(proj.unflatten(2, (6, -1)), sizes)  # (B, N, 6, D)
        rope = self._rope(groups, sizes, dev)
        patches = frame_patches(groups, self.patch)
        attn_mask = group_mask(groups, sizes, mask, token_time(groups, sizes, patches, dev))
        n_video = sum(n for g, n in zip(groups, sizes) if isinstance(g, VideoGroup))
        mot = self.action_blocks is not None and n_video < x.shape[1]  # a MoT layer only with action tokens
        experts = self.action_blocks if mot else [None] * len(m.blocks)
        for block, expert in zip(m.blocks, experts):
            layer = block if expert is None else _Pair(block, expert, n_video, attn_mask)
            if self.checkpointing and torch.is_grad_enabled():
                x = checkpoint(self.slot.call, attn_mask, layer, x, context, proj, rope, use_reentrant=False)
            else:
                x = self.slot.call(attn_mask, layer, x, context, proj, rope)
        shift, scale = (m.scale_shift_table.unsqueeze(0) + temb.unsqueeze(2)).chunk(2, dim=2)  # (B, N, 1, D) each
        x = (m.norm_out(x.float()) * (1 + scale.squeeze(2)) + shift.squeeze(2)).type_as(x)
        return split_groups(x, groups, sizes, self._read_out)

    def _read_out(self, x: Tensor, shape: torch.Size) -> Tensor:
        """(B, T*hp*wp, D) -> (B, T, C, h, w) through the model's proj_out, unpatchified as diffusers does."""
        b, t, _, h, w = shape
        ph, pw = self.patch
        x = self.model.proj_out(x).reshape(b, t, h // ph, w // pw, 1, ph, pw, -1)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6).flatten(6, 7).flatten(4, 5).flatten(2, 3)  # (B, C, T, h, w)
        return x.transpose(1, 2)



class _Pair:
    """One MoT layer: a video block and an action block sharing one self-attention (a callable, not a module)."""

    def __init__(self, video: nn.Module, action: nn.Module, n_video: int, mask: Tensor | None):
        self.video, self.action, self.n_video, self.mask = video, action, n_video, mask

    def __call__(self, x: Tensor, context: Tensor, proj: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        return mot_layer((self.video, self.action), x, self.n_video, context, proj, rope, self.mask)


def _rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Wan's RoPE on (B, N, H, D): adjacent pairs rotated by the (repeat-interleaved) cos/sin tables."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    c, s = cos[..., 0::2], sin[..., 1::2]
    return torch.stack([x1 * c - x2 * s, x1 * s + x2 * c], -1).flatten(-2).type_as(x)


def mot_layer(blocks: tuple[nn.Module, nn.Module], x: Tensor, n_video: int, context: Tensor, proj: Tensor,
              rope: tuple[Tensor, Tensor], mask: Tensor | None) -> Tensor:
    """WanTransformerBlock's computation with tokens [:n_video] on blocks[0]'s weights and the rest on
    blocks[1]'s, the self-attention joint over all tokens. x (B, N, D), proj (B, N, 6, D)."""
    spans = (slice(0, n_video), slice(n_video, None))
    mods, qkv = [], []
    for blk, s in zip(blocks, spans):
        shift, scale, gate, c_shift, c_scale, c_gate = (
            m.squeeze(2) for m in (blk.scale_shift_table.unsqueeze(0) + proj[:, s].float()).chunk(6, dim=2))
        h = (blk.norm1(x[:, s].float()) * (1 + scale) + shift).type_as(x)
        a = blk.attn1
        q, k, v = (z.unflatten(2, (a.heads, -1)) for z in (a.norm_q(a.to_q(h)), a.norm_k(a.to_k(h)), a.to_v(h)))
        mods.append((gate, c_shift, c_scale, c_gate))
        qkv.append((q, k, v))
    q, k, v = (torch.cat(z, 1) for z in zip(*qkv))  # (B, N, H, Dh)
    q, k = _rotate(q, *rope), _rotate(k, *rope)
    att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
    att = att.transpose(1, 2).flatten(2).type_as(q)  # (B, N, D)
    out = []
    for blk, s, (gate, c_shift, c_scale, c_gate) in zip(blocks, spans, mods):
        xs = x[:, s]
        xs = (xs.float() + blk.attn1.to_out[1](blk.attn1.to_out[0](att[:, s])) * gate).type_as(xs)
        xs = xs + blk.attn2(blk.norm2(xs.float()).type_as(xs), context, None, None)
        h = (blk.norm3(xs.float()) * (1 + c_scale) + c_shift).type_as(xs)
        out.append((xs.float() + blk.ffn(h).float() * c_gate).type_as(xs))
    return torch.cat(out, 1)
