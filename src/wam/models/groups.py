"""Token groups: how frames (as latents), text, vectors and their positions become backbone tokens.

Every WAM variant builds its input from these pieces, so they live apart from any one model:

    LatentPatches   (B, T, C, h, w) latents  <->  (B, T*(h/p)*(w/p), C*p*p) patches, positions
    VectorTokens    (B, T, D) states/actions  ->  (B, T, width), positions (time, 0, 0)
    TextToken       (B, 384) sentence embedding -> (B, 1, width), with a learned "no text" token

Positions are (time, row, col) for the backbone's 3-axis rotary embedding; time is the frame
offset itself (e.g. -1, 0 for observations and 4, 8, 12, 16 for a strided future), so the model
knows how far ahead each future frame is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


# which weights (Mixture-of-Transformers expert) each token group uses; one table for the world model and
# every policy, so weights move between them by structure
MODALITY = {"text": "text", "obs": "video", "future": "video", "state": "action", "action": "action",
            "latent_action": "action"}


def next_offset(offsets: Sequence[int]) -> int:
    """The frame offset one stride after the last of `offsets` (stride: the last gap, or the offset)."""
    last = sorted(offsets)
    return last[-1] + (last[-1] - last[-2] if len(last) > 1 else last[-1])


def frame_positions(offsets: Sequence[int], rows: int, cols: int) -> Tensor:
    """(T*rows*cols, 3) long positions (time, row, col) of patch tokens, time-major."""
    t = torch.as_tensor(list(offsets), dtype=torch.long)
    grid = torch.stack(torch.meshgrid(t, torch.arange(rows), torch.arange(cols), indexing="ij"), -1)
    return grid.reshape(-1, 3)


def vector_positions(offsets: Sequence[int]) -> Tensor:
    """(T, 3) positions (time, 0, 0) of one token per time step."""
    t = torch.as_tensor(list(offsets), dtype=torch.long)
    return torch.stack([t, torch.zeros_like(t), torch.zeros_like(t)], -1)


class LatentPatches(nn.Module):
    """Latent frames to tokens and tokens back to latent frames (a linear map per patch)."""

    def __init__(self, channels: int, patch: int, width: int, out: bool = False):
        super().__init__()
        self.channels, self.patch = channels, patch
        self.proj_in = nn.Linear(channels * patch * patch, width)
        self.proj_out = nn.Linear(width, channels * patch * patch) if out else None
        if self.proj_out is not None:
            nn.init.zeros_(self.proj_out.weight)
            nn.init.zeros_(self.proj_out.bias)

    def patchify(self, x: Tensor) -> Tensor:
        """(B, T, C, h, w) -> (B, T*(h/p)*(w/p), C*p*p)."""
        b, t, c, h, w = x.shape
        p = self.patch
        if h % p or w % p:
            raise ValueError(f"latent grid {h}x{w} is not divisible by the patch size {p}")
        x = x.reshape(b, t, c, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4, 6)
        return x.reshape(b, t * (h // p) * (w // p), c * p * p)

    def unpatchify(self, x: Tensor, t: int, h: int, w: int) -> Tensor:
        """(B, T*(h/p)*(w/p), C*p*p) -> (B, T, C, h, w)."""
        b, p, c = x.shape[0], self.patch, self.channels
        x = x.reshape(b, t, h // p, w // p, c, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        return x.reshape(b, t, c, h, w)

    def embed(self, latents: Tensor) -> Tensor:
        """(B, T, C, h, w) -> (B, N, width)."""
        return self.proj_in(self.patchify(latents))

    def read_out(self, tokens: Tensor, t: int, h: int, w: int) -> Tensor:
        """(B, N, width) -> (B, T, C, h, w) through the zero-initialised output map."""
        return self.unpatchify(self.proj_out(tokens), t, h, w)


class VectorTokens(nn.Module):
    """One token per time step of a (B, T, D) sequence (states, actions)."""

    def __init__(self, dim: int, width: int, out: bool = False):
        super().__init__()
        self.proj_in = nn.Linear(dim, width)
        self.proj_out = nn.Linear(width, dim) if out else None
        if self.proj_out is not None:
            nn.init.zeros_(self.proj_out.weight)
            nn.init.zeros_(self.proj_out.bias)

    def embed(self, x: Tensor) -> Tensor:
        return self.proj_in(x)

    def read_out(self, tokens: Tensor) -> Tensor:
        return self.proj_out(tokens)


class TextToken(nn.Module):
    """A sentence embedding as one token; `drop` replaces it with a learned null token."""

    def __init__(self, dim: int, width: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(dim, width), nn.SiLU(), nn.Linear(width, width))
        self.null = nn.Parameter(torch.zeros(width))

    def forward(self, text: Tensor, drop: Tensor | None = None) -> Tensor:
        """(B, D) embeddings, (B,) bool drop mask -> (B, 1, width)."""
        tokens = self.proj(text)
        if drop is not None:
            tokens = torch.where(drop[:, None], self.null.to(tokens.dtype).expand_as(tokens), tokens)
        return tokens[:, None]
