"""wam's token groups on diffusers' `CosmosTransformer3DModel` (Cosmos-Predict2), weights as they are.

As wan.py, the model's own modules do the work; wam lays out the joint sequence:

    video groups  -> [latents, condition-mask channel (1 = clean conditioning frame, Cosmos's own way of
                     marking given frames), zero padding-mask channel] -> model.patch_embed; RoPE rows of
                     model.rope and the learnable position embedding at (rank, row, col)
    token groups  -> as given (B, N, width), RoPE at (0, 0, 0), no extra position embedding
    t per group   -> model.time_embed (per-token, as Cosmos's per-frame timesteps) -> every block's adaLN
    text (B,L,D)  -> [model.crossattn_proj] -> cross-attention
    read-out      -> model.norm_out + proj_out, unpatchified per video group as diffusers does

The padding-mask channel is concatenated here (zeros: no padding) instead of by diffusers' forward,
which resizes it with torchvision; so `concat_padding_mask=True` checkpoints (Cosmos-Predict2-2B)
run without torchvision. `fps` (None = image-style RoPE) is passed to the model's RoPE as the
pipeline does. One video group at one t with no mask equals `CosmosTransformer3DModel.forward`
(tests/backbones/test_cosmos.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from wam.backbones.base import (Group, VideoGroup, check_text, expand_per_token, flow_timesteps, frame_grid, split_groups,
                                frame_patches, grid_index, group_mask, install_mask_processors, token_time)
from wam.errors import ConfigError
from wam.nn.token_groups import GroupMask


class CosmosBackbone(nn.Module):
    """wam token groups -> diffusers' CosmosTransformer3DModel -> velocities (video) / tokens (other groups)."""

    def __init__(self, model: nn.Module, checkpointing: bool = False, fps: int | None = None):
        super().__init__()
        cfg = model.config
        if tuple(cfg.patch_size)[0] != 1:
            raise ConfigError(f"transformer config patch_size={tuple(cfg.patch_size)}: wam needs a temporal patch of 1")
        self.model, self.checkpointing, self.fps = model, checkpointing, fps
        self.width = cfg.num_attention_heads * cfg.attention_head_dim
        self.latent_channels = cfg.out_channels
        self.in_channels = cfg.out_channels  # what wam feeds; the mask channels are added here
        self.condition_channel = cfg.in_channels - cfg.out_channels  # 1: a condition-mask channel, 0: none
        if self.condition_channel not in (0, 1):
            raise ConfigError(f"transformer config in_channels={cfg.in_channels}, out_channels={cfg.out_channels}: "
                              f"expected in = out (+ 1 condition-mask channel)")
        self.text_dim = cfg.crossattn_proj_in_channels if cfg.use_crossattn_projection else cfg.text_embed_dim
        self.patch = tuple(cfg.patch_size)[1:]
        self.slot = install_mask_processors([b.attn1 for b in model.transformer_blocks])

    def init_action_expert(self) -> None:  # no action expert on Cosmos (see build.make_backbone)
        pass

    def video_blocks(self) -> list[nn.Module]:
        return list(self.model.transformer_blocks)

    def _embed(self, g: VideoGroup | Group) -> Tensor:
        if isinstance(g, Group):
            return g.tokens
        x = g.latents.transpose(1, 2)  # (B, C, T, h, w)
        extra = []
        if self.condition_channel:
            extra.append(torch.full_like(x[:, :1], 1.0 if g.t is None else 0.0))
        if self.model.config.concat_padding_mask:
            extra.append(torch.zeros_like(x[:, :1]))
        return self.model.patch_embed(torch.cat([x, *extra], 1)).flatten(1, 3)  # (B, T*hp*wp, D)

    def _positions(self, groups, sizes, device, dtype) -> tuple[tuple[Tensor, Tensor], Tensor | None]:
        frames, h, w = frame_grid(groups)
        ph, pw = self.patch
        fake = torch.empty(1, 1, frames, h, w, device=device, dtype=dtype)
        cos, sin = self.model.rope(fake, fps=self.fps)  # (F*hp*wp, Dh)
        pos = self.model.learnable_pos_embed(fake) if self.model.learnable_pos_embed is not None else None
        idx, keep = [], []
        for g, n in zip(groups, sizes):
            video = isinstance(g, VideoGroup)
            idx.append(grid_index(g.frames, h // ph, w // pw, device) if video
                       else torch.zeros(n, dtype=torch.long, device=device))
            keep.append(torch.full((n,), float(video), device=device))
        idx = torch.cat(idx)
        extra = None if pos is None else pos[:, idx] * torch.cat(keep)[None, :, None].to(pos.dtype)  # (1, N, D)
        return (cos[idx], sin[idx]), extra

    def forward(self, groups: Sequence[VideoGroup | Group], mask: GroupMask, text: Tensor) -> dict[str, Tensor]:
        m = self.model
        text = check_text(text, self.text_dim)
        tokens = [self._embed(g) for g in groups]
        sizes = [x.shape[1] for x in tokens]
        x = torch.cat(tokens, 1)  # (B, N, D)
        b, dev = x.shape[0], x.device
        steps = torch.stack([flow_timesteps(g.t, b, dev) for g in groups], 1)  # (B, G)
        temb, emb_t = m.time_embed(x, steps.flatten())  # (B*G, 3D), (B*G, D)
        temb, emb_t = (expand_per_token(e.unflatten(0, (b, -1)), sizes) for e in (temb, emb_t))  # (B, N, .)
        rope, extra = self._positions(groups, sizes, dev, x.dtype)
        context = m.crossattn_proj(text.to(x.dtype)) if m.config.use_crossattn_projection else text.to(x.dtype)
        attn_mask = group_mask(groups, sizes, mask, token_time(groups, sizes, frame_patches(groups, self.patch), dev))
        for block in m.transformer_blocks:
            args = (attn_mask, block, x, context, emb_t, temb, rope, extra, None, None)
            if self.checkpointing and torch.is_grad_enabled():
                x = checkpoint(self.slot.call, *args, use_reentrant=False)
            else:
                x = self.slot.call(*args)
        x = m.norm_out(x, emb_t, temb)
        return split_groups(x, groups, sizes, self._read_out)

    def _read_out(self, x: Tensor, shape: torch.Size) -> Tensor:
        """(B, T*hp*wp, D) -> (B, T, C, h, w) through the model's proj_out, unpatchified as diffusers does."""
        b, t, _, h, w = shape
        ph, pw = self.patch
        x = self.model.proj_out(x).unflatten(2, (ph, pw, 1, -1)).unflatten(1, (t, h // ph, w // pw))
        x = x.permute(0, 7, 1, 6, 2, 4, 3, 5).flatten(6, 7).flatten(4, 5).flatten(2, 3)  # (B, C, T, h, w)
        return x.transpose(1, 2)
