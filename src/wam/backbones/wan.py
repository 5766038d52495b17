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

With one video group holding the whole clip at one t and no mask this is exactly
`WanTransformer3DModel.forward` (tests/backbones/test_wan.py checks it to 1e-5).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from wam.backbones.base import (Group, VideoGroup, check_text, expand_per_token, flow_timesteps, frame_grid,
                                frame_patches, grid_index, group_mask, install_mask_processors, token_time)
from wam.errors import ConfigError
from wam.nn.transformer import GroupMask


class WanBackbone(nn.Module):
    """wam token groups -> diffusers' WanTransformer3DModel -> velocities (video) / tokens (other groups)."""

    def __init__(self, model: nn.Module, checkpointing: bool = False):
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
        self.slot.mask = group_mask(groups, sizes, mask, token_time(groups, sizes, patches, dev))
        for block in m.blocks:
            if self.checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, context, proj, rope, use_reentrant=False)
            else:
                x = block(x, context, proj, rope)
        shift, scale = (m.scale_shift_table.unsqueeze(0) + temb.unsqueeze(2)).chunk(2, dim=2)  # (B, N, 1, D) each
        x = (m.norm_out(x.float()) * (1 + scale.squeeze(2)) + shift.squeeze(2)).type_as(x)
        out, start = {}, 0
        for g, n in zip(groups, sizes):
            part = x[:, start:start + n]
            out[g.name] = self._read_out(part, g.latents.shape) if isinstance(g, VideoGroup) else part
            start += n
        return out

    def _read_out(self, x: Tensor, shape: torch.Size) -> Tensor:
        """(B, T*hp*wp, D) -> (B, T, C, h, w) through the model's proj_out, unpatchified as diffusers does."""
        b, t, _, h, w = shape
        ph, pw = self.patch
        x = self.model.proj_out(x).reshape(b, t, h // ph, w // pw, 1, ph, pw, -1)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6).flatten(6, 7).flatten(4, 5).flatten(2, 3)  # (B, C, T, h, w)
        return x.transpose(1, 2)

