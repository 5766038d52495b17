"""diffusers' `AutoencoderKLWan` (the VAE of Wan and Cosmos-Predict2) behind wam's frame-tokenizer interface.

wam encodes every frame once and trains on latents; each frame goes through the VAE as a one-frame
video (Wan's causal VAE encodes a first frame on its own, so no temporal compression is involved),
the posterior mean is the latent, normalised with the VAE config's `latents_mean` / `latents_std`.

    tok = VaeTokenizer(vae, image_size=64)
    z = tok.normalize(tok.encode(frames))          # (..., 3, 64, 64) uint8 -> (..., C, 8, 8)
    x = tok.decode(tok.denormalize(z))             # -> (..., 3, 64, 64) float in [0, 1]

The VAE is frozen (its weights stay as loaded; they are saved with a run's checkpoint like the
small tokenizer's).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from wam.errors import ConfigError


@dataclass
class VaeTokenizerConfig:
    """The fields wam reads of a tokenizer config."""

    image_size: int
    latent_channels: int
    downsample: int

    @property
    def latent_size(self) -> int:
        return self.image_size // self.downsample


class VaeTokenizer(nn.Module):
    """Frames (..., 3, H, W) <-> normalised-ready latents (..., C, H/d, W/d) through AutoencoderKLWan."""

    def __init__(self, vae: nn.Module, image_size: int):
        super().__init__()
        c = vae.config
        down = int(getattr(c, "scale_factor_spatial", None) or 8)
        if image_size % down:
            raise ConfigError(f"data.image_size={image_size} is not a multiple of the VAE's spatial factor {down}")
        self.cfg = VaeTokenizerConfig(image_size, int(c.z_dim), down)
        self.vae = vae.requires_grad_(False).eval()
        mean, std = c.latents_mean, c.latents_std
        if mean is None or len(mean) != c.z_dim or len(std) != c.z_dim:
            raise ConfigError(f"VAE config: latents_mean/latents_std need {c.z_dim} values (z_dim)")
        self.register_buffer("latent_mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("latent_std", torch.tensor(std, dtype=torch.float32))

    def train(self, mode: bool = True) -> VaeTokenizer:  # the VAE is frozen: always in eval mode
        return super().train(False)

    def _frames(self, frames: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        s = self.cfg.image_size
        if frames.ndim < 3 or frames.shape[-3] != 3 or frames.shape[-2:] != (s, s):
            raise ValueError(f"the VAE tokenizer expects frames (..., 3, {s}, {s}), got {tuple(frames.shape)}")
        x = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
        return x.reshape(-1, 3, s, s) * 2 - 1, tuple(frames.shape[:-3])  # [-1, 1], as the VAE was trained

    @torch.no_grad()
    def encode(self, frames: Tensor) -> Tensor:
        x, lead = self._frames(frames)  # (N, 3, H, W)
        z = self.vae.encode(x[:, :, None].to(self.latent_mean.dtype)).latent_dist.mode()  # (N, C, 1, h, w)
        return z[:, :, 0].reshape(*lead, *z.shape[1:2], *z.shape[-2:])

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        lead = latents.shape[:-3]
        z = latents.reshape(-1, *latents.shape[-3:])[:, :, None].to(self.latent_mean.dtype)  # (N, C, 1, h, w)
        x = self.vae.decode(z).sample[:, :, 0]  # (N, 3, H, W) in [-1, 1]
        return ((x.float() + 1) / 2).clamp(0, 1).reshape(*lead, *x.shape[1:])

    def normalize(self, z: Tensor) -> Tensor:
        shape = (-1, 1, 1)
        return (z - self.latent_mean.view(shape).to(z.dtype)) / self.latent_std.view(shape).to(z.dtype)

    def denormalize(self, z: Tensor) -> Tensor:
        shape = (-1, 1, 1)
        return z * self.latent_std.view(shape).to(z.dtype) + self.latent_mean.view(shape).to(z.dtype)
