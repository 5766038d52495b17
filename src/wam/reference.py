"""The outside reference policy: a small conv image policy in Diffusion Policy's style, not a WAM.

    wam train --paradigm=conv_reference --data.path=data/mw5 --out=runs/ref
    wam eval --policy=runs/ref

Every WAM number needs an anchor outside the WAM family: the policy a practitioner tries first,
trained on the same demo windows and evaluated by the same `wam eval`. Diffusion Policy's recipe,
small (3.9M parameters at the defaults, for 64 px frames and one obs frame):

    obs.image (B, To, 3, H, W) uint8 -> ResNet (GroupNorm) -> spatial-softmax keypoints -> (B, To, F)
    [image features, obs.state (B, To, Ds), Linear(text_emb (B, 384)) (B, F)]  -> condition (B, cond)
    action chunk (B, Ta, Da) <- flow matching with a 1D temporal U-Net, FiLM-conditioned (ConditionalUnet1D)

It sees the frames the WAMs see (the training cache at `data.image_size`; at test time the same
`resize_frames`), as pixels rather than tokenizer latents, with DrQ-style random shifts while
training (`policy.reference.shift`; its settings: `wam.reference_config`), and predicts no video. It plugs into `WamPolicy` as a paradigm-like
module (`pixels = True`), so normalisation, the action queue, temporal ensembling, observation
history and checks are the WAMs' own, and `wam train` / `wam eval` / `load_policy` need no other path.
It is not in the paradigm registry (that holds WAM combinations); `REFERENCES` names it for `wam train`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wam.data.text import EMBED_DIM
from wam.nn.flow import euler_sample, gaussian
from wam.nn.transformer import timestep_embedding
from wam.paradigms.base import PolicyModelConfig, keep_mask, noise_group


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)


# -- image encoder ------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    """ResNet's basic block with GroupNorm (Diffusion Policy replaces BatchNorm by it)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), group_norm(c_out), nn.ReLU(),
                                  nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), group_norm(c_out))
        self.skip = (nn.Identity() if c_in == c_out and stride == 1 else
                     nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), group_norm(c_out)))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + self.skip(x))


class SpatialSoftmax(nn.Module):
    """(N, C, h, w) feature maps -> (N, 2K) expected (x, y) of K learned keypoints, in [-1, 1]."""

    def __init__(self, channels: int, keypoints: int):
        super().__init__()
        self.keys = nn.Conv2d(channels, keypoints, 1)

    def forward(self, x: Tensor) -> Tensor:
        heat = self.keys(x).float()  # (N, K, h, w)
        n, k, h, w = heat.shape
        attn = heat.flatten(2).softmax(-1)  # (N, K, h*w)
        line = lambda n: torch.linspace(-1, 1, n, device=x.device)  # noqa: E731
        ys, xs = torch.meshgrid(line(h), line(w), indexing="ij")
        grid = torch.stack([xs.flatten(), ys.flatten()], -1)  # (h*w, 2)
        return (attn[..., None] * grid).sum(2).reshape(n, 2 * k)  # elementwise: fp32 under bf16 autocast


class ImageEncoder(nn.Module):
    """uint8 frames (N, 3, H, W) -> (N, feature): a stride-2 stem, one basic block per stage (each
    stage after the first halves the map), then spatial-softmax keypoints (or global average pooling)."""

    def __init__(self, channels: Sequence[int], keypoints: int, feature: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels[0], 3, 2, 1, bias=False), group_norm(channels[0]), nn.ReLU())
        self.stages = nn.Sequential(*[BasicBlock(a, b, 1 if i == 0 else 2)
                                      for i, (a, b) in enumerate(zip([channels[0], *channels], channels))])
        self.pool = SpatialSoftmax(channels[-1], keypoints) if keypoints else None
        self.out = nn.Linear(2 * keypoints if keypoints else channels[-1], feature)

    def forward(self, x: Tensor) -> Tensor:
        h = self.stages(self.stem(x))  # (N, C, h, w)
        return self.out(self.pool(h) if self.pool is not None else h.mean((2, 3)))


def to_unit(frames: Tensor) -> Tensor:
    """uint8 (N, 3, H, W) -> float in [-1, 1]."""
    return frames.float() / 127.5 - 1


def random_shift(x: Tensor, pad: int, generator: torch.Generator | None = None) -> Tensor:
    """DrQ's augmentation: pad each (N, C, H, W) image by `pad` (edge pixels), crop back at a random offset."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


# -- denoiser: Diffusion Policy's ConditionalUnet1D, small ------------------------------------
class ConvBlock1d(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int = 5):
        super().__init__(nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2), group_norm(c_out), nn.Mish())


class FilmBlock1d(nn.Module):
    """Two conv blocks; the condition scales and shifts the first one's output per channel (FiLM)."""

    def __init__(self, c_in: int, c_out: int, cond: int):
        super().__init__()
        self.first, self.second = ConvBlock1d(c_in, c_out), ConvBlock1d(c_out, c_out)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond, 2 * c_out))
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:  # x (B, C, T), cond (B, cond)
        scale, shift = self.film(cond)[..., None].chunk(2, dim=1)
        return self.second(self.first(x) * scale + shift) + self.skip(x)


class TemporalUnet(nn.Module):
    """Velocity of a noisy action chunk (B, Ta, Da) at flow time t (B,) given a condition (B, cond).
    Levels `dims`, each halving the time axis after the first; the chunk is zero-padded to fit."""

    def __init__(self, action_dim: int, cond: int, dims: Sequence[int]):
        super().__init__()
        self.time = nn.Sequential(nn.Linear(dims[0], 4 * dims[0]), nn.Mish(), nn.Linear(4 * dims[0], dims[0]))
        cond += dims[0]
        pairs = list(zip([action_dim, *dims], dims))
        last = len(pairs) - 1
        self.down = nn.ModuleList(nn.ModuleList([FilmBlock1d(a, b, cond), FilmBlock1d(b, b, cond),
                                                 nn.Conv1d(b, b, 3, 2, 1) if i < last else nn.Identity()])
                                  for i, (a, b) in enumerate(pairs))
        self.mid = nn.ModuleList([FilmBlock1d(dims[-1], dims[-1], cond) for _ in range(2)])
        self.up = nn.ModuleList(nn.ModuleList([FilmBlock1d(2 * b, a, cond), FilmBlock1d(a, a, cond),
                                               nn.ConvTranspose1d(a, a, 4, 2, 1)])
                                for a, b in reversed(pairs[1:]))
        self.final = nn.Sequential(ConvBlock1d(dims[0], dims[0]), nn.Conv1d(dims[0], action_dim, 1))
        self.multiple = 2 ** last

    def forward(self, x: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        steps = x.shape[1]
        c = torch.cat([self.time(timestep_embedding(t, self.time[0].in_features)), cond], -1)
        h = F.pad(x.transpose(1, 2), (0, -steps % self.multiple))  # (B, Da, T padded)
        skips = []
        for first, second, down in self.down:
            h = second(first(h, c), c)
            skips.append(h)
            h = down(h)
        for block in self.mid:
            h = block(h, c)
        for first, second, up in self.up:
            h = up(second(first(torch.cat([h, skips.pop()], 1), c), c))
        return self.final(h)[..., :steps].transpose(1, 2).float()  # (B, Ta, Da)


# -- the policy model -----------------------------------------------------------------------------
class ConvReference(nn.Module):
    """Pixels + proprio state + instruction -> action chunk by flow matching; a paradigm-like module
    for `WamPolicy` (`loss`, `act`, `cfg`, `video`, `pixels`, `image_size`, `last_future`).

    Batches are those a paradigm gets, with frames instead of latents:
        obs.image (B, To, 3, H, W) uint8   obs.state (B, To, Ds)   text_emb (B, 384)
        action (B, Ta, Da) in [-1, 1] + action_is_pad (B, Ta)      (training)
    """

    name = "conv_reference"
    video = False  # predicts no future frames: training windows have none
    pixels = True  # WamPolicy feeds it frames (obs.image), not tokenizer latents
    settings = ("reference",)  # policy.reference.* (wam.reference_config)

    def __init__(self, cfg: PolicyModelConfig, image_size: int):
        super().__init__()
        cfg.check()
        self.cfg, self.image_size = cfg, image_size
        own = cfg.reference
        self.encoder = ImageEncoder(own.channels, own.keypoints, own.feature)
        self.text = nn.Linear(EMBED_DIM, own.feature)
        cond = len(cfg.obs) * (own.feature + cfg.state_dim) + own.feature
        self.denoiser = TemporalUnet(cfg.action_dim, cond, own.unet)
        self.last_future: Tensor | None = None  # it imagines nothing

    def condition(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        """(B, cond): every obs frame's image feature and state, and the instruction's feature."""
        images = batch["obs.image"]  # (B, To, 3, H, W) uint8
        b, t = images.shape[:2]
        x = to_unit(images.flatten(0, 1))  # (B*To, 3, H, W)
        if self.training and self.cfg.reference.shift:
            x = random_shift(x, self.cfg.reference.shift, generator)
        features = self.encoder(x).float().reshape(b, t, -1)  # (B, To, F)
        per_frame = torch.cat([features, batch["obs.state"].float()], -1).flatten(1)  # (B, To*(F+Ds))
        return torch.cat([per_frame, self.text(batch["text_emb"]).float()], -1)

    def loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[Tensor, dict]:
        a = noise_group(batch["action"], generator)
        pred = self.denoiser(a.x_t, a.t, self.condition(batch, generator))
        action_loss = a.loss(pred, keep_mask(batch["action_is_pad"], a.x0))
        return self.cfg.action_weight * action_loss, {"action_loss": action_loss.detach()}

    @torch.no_grad()
    def act(self, batch: dict, generator: torch.Generator | None = None) -> Tensor:
        """(B, Ta, Da) normalised actions: the condition computed once, then the Euler sampler."""
        cond = self.condition(batch)
        shape = (cond.shape[0], self.cfg.chunk, self.cfg.action_dim)
        step = lambda x, t: {"action": self.denoiser(x["action"], t, cond)}  # noqa: E731
        return euler_sample(step, {"action": gaussian(shape, generator, cond.device)}, self.cfg.sample_steps)["action"]

    def imagine(self, batch: dict, generator: torch.Generator | None = None) -> None:
        return None  # no video head


REFERENCES: dict[str, type[nn.Module]] = {ConvReference.name: ConvReference}
