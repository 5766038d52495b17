"""The latent-action model (LAM; Genie, LAPA) and the small decoder from its codes to robot actions.

The LAM learns what changed between two frames from action-free video: an encoder maps a pair of
latent frames (frame i, frame i+1) to a vector, a small codebook quantises it (the information
bottleneck), and a decoder must rebuild frame i+1 from frame i and that code alone. Its loss is
reconstruction + codebook + commitment; it never reads actions.

    lam = LatentActionModel(channels=8, codes=16, dim=16, width=64)
    out = lam(frames, keep)   # frames (B, T+1, C, h, w): a frame, then T later ones; keep (B, T) bool
    out.codes  (B, T, D)      quantised code of each consecutive pair (straight-through gradient)
    out.index  (B, T)         codebook entries used
    out.loss                  recon + codebook + beta * commitment, over the kept pairs
    lam.snap(x)               (..., D) anything -> the nearest codebook vector (used at test time)
    lam.seed_codebook(frames) every entry on the code of a random pair (before training)
    lam.quantise(frames)      (B, T, D) codebook vectors of the pairs, no loss (inverse dynamics)

Code vectors live on a sphere of radius sqrt(D) (encoder outputs and codebook entries are
l2-normalised, cosine-similarity VQ as in ViT-VQGAN: no scale to collapse, every entry reachable),
so each element has roughly unit variance: a well-scaled flow-matching target for the world model.
`ActionDecoder` maps T codes + proprio state to an action chunk (no image input: LAPA's decoder reads the
codes, so it cannot bypass them by reading the frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wam.nn.flow import masked_mse


@dataclass
class LamOutput:
    codes: Tensor  # (B, T, D) quantised, straight-through
    index: Tensor  # (B, T) long
    loss: Tensor  # recon + vq
    recon: Tensor  # reconstruction loss alone
    perplexity: Tensor  # exp(entropy) of the codes used over the kept pairs
    used: Tensor  # fraction of the codebook used over the kept pairs


def _conv_net(c_in: int, width: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, width, 3, padding=1), nn.SiLU(),
                         nn.Conv2d(width, width, 3, padding=1), nn.SiLU(),
                         nn.Conv2d(width, c_out, 3, padding=1))


class LatentActionModel(nn.Module):
    """Frame pair -> quantised latent action -> next frame, on the tokenizer's (C, h, w) latents."""

    def __init__(self, channels: int, codes: int, dim: int, width: int, beta: float = 0.25, decay: float = 0.8):
        super().__init__()
        self.dim, self.beta, self.decay = dim, beta, decay
        self.encoder = _conv_net(2 * channels, width, width)
        self.to_code = nn.Linear(width, dim)
        self.codebook = nn.Parameter(torch.randn(codes, dim))
        self.decoder = _conv_net(channels + dim, width, channels)
        self.register_buffer("usage_ema", torch.full((codes,), 1.0 / codes))  # share of pairs per code

    @torch.no_grad()
    def _restart_dead(self, z: Tensor) -> None:
        """Move codes that fell out of use (EMA share < 1/(10 n)) onto random encoder outputs z (M, D);
        called before the codebook enters the graph, so the in-place update is safe for autograd."""
        n = self.codebook.shape[0]
        dead = (self.usage_ema < 0.1 / n).nonzero().flatten()
        if len(dead) and len(z):
            pick = torch.randint(len(z), (len(dead),), device=z.device)
            fresh = z[pick].float() + 0.01 * torch.randn_like(z[pick].float())  # z is bf16 under autocast
            self.codebook[dead] = fresh.to(self.codebook.dtype)
            self.usage_ema[dead] = 1.0 / n

    @torch.no_grad()
    def _count(self, index: Tensor) -> None:
        n = self.codebook.shape[0]
        share = torch.bincount(index, minlength=n).float() / max(len(index), 1)
        self.usage_ema.mul_(self.decay).add_((1 - self.decay) * share)

    def _sphere(self, x: Tensor) -> Tensor:
        return math.sqrt(self.dim) * F.normalize(x, dim=-1)

    def encode(self, prev: Tensor, nxt: Tensor) -> Tensor:
        """(N, C, h, w) x2 -> (N, D) unquantised latent action (on the sphere)."""
        h = self.encoder(torch.cat([prev, nxt], 1)).mean((-2, -1))  # (N, width)
        return self._sphere(self.to_code(h))

    def decode(self, prev: Tensor, code: Tensor) -> Tensor:
        """(N, C, h, w) frame + (N, D) code -> (N, C, h, w) predicted next frame."""
        grid = code[:, :, None, None].expand(-1, -1, *prev.shape[-2:])
        return prev + self.decoder(torch.cat([prev, grid], 1))

    def lookup(self, z: Tensor) -> Tensor:
        """(..., D) -> (...) index of the nearest codebook entry (by cosine)."""
        return (F.normalize(z, dim=-1) @ F.normalize(self.codebook, dim=-1).T).argmax(-1)

    def entries(self, index: Tensor) -> Tensor:
        """(...) indices -> (..., D) codebook vectors on the sphere."""
        return self._sphere(self.codebook)[index]

    def snap(self, x: Tensor) -> Tensor:
        """(..., D) e.g. a predicted code -> the nearest codebook vector."""
        return self.entries(self.lookup(x))

    @torch.no_grad()
    def seed_codebook(self, frames: Tensor) -> None:
        """Put every codebook entry on the code of a random consecutive pair of `frames` (B, T+1, C, h, w): the
        data-dependent start of VQ training (an untrained codebook sends nearly every pair to one entry)."""
        self.usage_ema.zero_()
        self._restart_dead(self.encode(frames[:, :-1].flatten(0, 1), frames[:, 1:].flatten(0, 1)))

    @torch.no_grad()
    def quantise(self, frames: Tensor) -> Tensor:
        """(B, T+1, C, h, w) frames -> (B, T, D) codebook vectors of each consecutive pair."""
        z = self.encode(frames[:, :-1].flatten(0, 1), frames[:, 1:].flatten(0, 1))
        return self.snap(z).unflatten(0, frames.shape[:1] + (frames.shape[1] - 1,))

    def forward(self, frames: Tensor, keep: Tensor) -> LamOutput:
        """frames (B, T+1, C, h, w), keep (B, T) bool: which consecutive pairs count in the loss."""
        b, t1 = frames.shape[:2]
        prev, nxt = frames[:, :-1].flatten(0, 1), frames[:, 1:].flatten(0, 1)  # (B*T, C, h, w)
        z = self.encode(prev, nxt)  # (B*T, D)
        kept = keep.flatten()
        if self.training:
            self._restart_dead(z.detach()[kept])
        index = self.lookup(z)
        q = self.entries(index)
        k = keep.flatten().float()[:, None].expand_as(z)
        vq = masked_mse(q, z.detach(), k) + self.beta * masked_mse(z, q.detach(), k)
        codes = z + (q - z).detach()  # straight-through
        # relative to copying the frame (1 = no better than `prev`): consecutive latents differ little, so a plain
        # MSE is small whatever the code says and the codebook collapses onto one entry
        copy = masked_mse(prev, nxt, keep.flatten()).detach().clamp_min(1e-6)
        recon = masked_mse(self.decode(prev, codes), nxt, keep.flatten()) / copy
        perplexity, used = usage(index[kept], self.codebook.shape[0])
        if self.training:
            self._count(index[kept])
        return LamOutput(codes.unflatten(0, (b, t1 - 1)), index.unflatten(0, (b, t1 - 1)), recon + vq, recon,
                         perplexity, used)


@torch.no_grad()
def usage(index: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """Codebook perplexity (1 = one code, n = uniform) and fraction of the n codes used."""
    counts = torch.bincount(index.flatten(), minlength=n).float()
    p = counts / counts.sum().clamp_min(1)
    entropy = -(p * p.clamp_min(1e-12).log()).sum()
    return entropy.exp(), (counts > 0).float().mean()


class ActionDecoder(nn.Module):
    """T latent-action codes + proprio state -> a (B, Ta, Da) action chunk (no frame: the codes carry the motion)."""

    def __init__(self, n_codes: int, dim: int, state_dim: int, chunk: int, action_dim: int, width: int = 256):
        super().__init__()
        self.chunk, self.action_dim = chunk, action_dim
        self.net = nn.Sequential(nn.Linear(n_codes * dim + state_dim, width), nn.SiLU(),
                                 nn.Linear(width, width), nn.SiLU(), nn.Linear(width, chunk * action_dim))

    def forward(self, codes: Tensor, state: Tensor) -> Tensor:
        """codes (B, T, D), state (B, Ds) -> (B, Ta, Da)."""
        return self.net(torch.cat([codes.flatten(1), state], 1)).unflatten(1, (self.chunk, self.action_dim))
