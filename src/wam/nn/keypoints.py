"""A second pixel stream for the policy: a small keypoint detector whose positions join the proprio state.

    --policy.keypoints.targets=object,goal --policy.keypoints.steps=1500

The frozen tokenizer keeps the goal marker as a 2-3 px blob at best, and a probe reads the goal from its
latents with R^2 0.4-0.8 (docs/world_model.md). A heatmap net on the raw frames finds it to a fraction of
a pixel: a fine branch (two 3x3 convolutions at full resolution: colour and edges) plus a coarse branch
(stride 4, dilated: context, which of the blobs of that colour is the marker) give one logit map per
target; the position is the soft-argmax in a small window around the map's peak, so outliers far from
the peak do not pull it. Trained with cross-entropy against a Gaussian around each frame's projected
target (`wam.envs.target_masks.dataset_centres`; a NaN target is left out), before the policy trains, then
frozen: the policy reads its positions, in [-1, 1], as `2 K` more state numbers. The recorded positions are
a training signal only (simulation); acting reads pixels.

Shapes: frames (B, 3, H, W) uint8 -> logits (B, K, H, W) -> positions (B, K, 2) (column, row) in [-1, 1].
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from wam.errors import ConfigError

KNOWN = ("hand", "object", "goal")  # the positions of wam.envs.target_masks.TARGETS
COARSE = 4  # the coarse branch's stride
LIFT_FEATURES = 6  # 1, u, v, u^2, v^2, uv: the quadratic map from an image position to the world (`world`)


@dataclass
class KeypointConfig:
    """The detector's targets and training; no targets = no pixel stream (the default)."""

    targets: str = ""  # comma list of hand, object, goal ("" = off)
    steps: int = 1500  # detector training steps (before the policy trains)
    batch_size: int = 32
    lr: float = 2e-3
    sigma: float = 1.0  # the target Gaussian's width, in pixels
    window: int = 3  # the soft-argmax reads the (2 window + 1)^2 pixels around the peak
    # also lift each position to the world: a quadratic map from (column, row) to the target's recorded xyz, fitted
    # on the training frames (`fit_lift`); the state then gets 3 standardised world numbers a target, not 2 pixels
    world: bool = False
    fine: int = 16  # channels of the full-resolution branch
    coarse: int = 32  # channels of the stride-4 branch

    def names(self) -> list[str]:
        return [n.strip() for n in self.targets.split(",") if n.strip()]

    def extra_dims(self) -> int:
        """State numbers the positions add: (column, row) per target, or its world (x, y, z) with `world`."""
        return (3 if self.world else 2) * len(self.names())

    def check(self) -> None:
        names = self.names()
        if [n for n in names if n not in KNOWN] or len(set(names)) != len(names):
            raise ConfigError(f"policy.keypoints.targets: a comma list of distinct {', '.join(KNOWN)}, "
                              f"got {self.targets!r}")
        for key in ("steps", "batch_size", "fine", "coarse"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"policy.keypoints.{key} must be an integer >= 1, got {value!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 0:
            raise ConfigError(f"policy.keypoints.window must be an integer >= 0, got {self.window!r}")
        if not (self.lr > 0 and self.sigma > 0):
            raise ConfigError(f"policy.keypoints.lr and .sigma must be > 0, got {self.lr} and {self.sigma}")


def _grid(size: int, device: torch.device) -> Tensor:
    """(size * size, 2) pixel centres (column, row), row-major like a flattened map."""
    r = torch.arange(size, device=device, dtype=torch.float32) + 0.5
    return torch.stack(torch.meshgrid(r, r, indexing="xy"), -1).reshape(-1, 2)


class KeypointNet(nn.Module):
    """Frames -> per-target logit maps (fine + upsampled coarse) -> positions by local soft-argmax."""

    def __init__(self, cfg: KeypointConfig, image_size: int):
        super().__init__()
        if image_size % COARSE:
            raise ConfigError(f"policy.keypoints needs an image size divisible by {COARSE}, got {image_size}")
        k, f, c = len(cfg.names()), cfg.fine, cfg.coarse
        self.cfg, self.size = cfg, image_size
        self.fine = nn.Sequential(nn.Conv2d(3, f, 3, padding=1), nn.GELU(), nn.Conv2d(f, f, 3, padding=1), nn.GELU(),
                                  nn.Conv2d(f, k, 1))
        dilated = [m for d in (1, 2, 4) for m in (nn.Conv2d(c, c, 3, padding=d, dilation=d), nn.GELU())]
        self.coarse = nn.Sequential(nn.Conv2d(3, c, COARSE, stride=COARSE), nn.GELU(), *dilated, nn.Conv2d(c, k, 1))
        # (K, F, 3), set by fit_lift: only with `world`, so image-position detectors hold no such tensor
        self.register_buffer("lift", torch.zeros(k, LIFT_FEATURES, 3) if cfg.world else None)

    def logits(self, frames: Tensor) -> Tensor:
        """(B, 3, H, W) uint8 -> (B, K, H * W) float32."""
        x = (frames.float() / 255 - 0.5) / 0.25
        up = F.interpolate(self.coarse(x), scale_factor=COARSE, mode="nearest")  # (B, K, H, W)
        return (self.fine(x) + up).flatten(2).float()

    def locate(self, logits: Tensor) -> Tensor:
        """(B, K, H * W) -> (B, K, 2) pixel positions (column, row): soft-argmax around each map's peak."""
        grid = _grid(self.size, logits.device)
        peak = grid[logits.argmax(-1)]  # (B, K, 2)
        near = (grid - peak[..., None, :]).abs().amax(-1) <= self.cfg.window  # (B, K, H * W)
        return logits.masked_fill(~near, float("-inf")).softmax(-1) @ grid

    def pixels(self, frames: Tensor) -> Tensor:
        """(..., 3, H, W) uint8 -> (..., K, 2) image positions in [-1, 1], always in fp32 (also inside the policy's
        bf16 autocast: the sub-pixel position is read off small logit differences; windows were found in fp32)."""
        lead = frames.shape[:-3]
        with torch.autocast(frames.device.type, enabled=False):
            px = self.locate(self.logits(frames.reshape(-1, *frames.shape[-3:])))
        return (px / self.size * 2 - 1).reshape(*lead, -1, 2)

    def lifted(self, positions: Tensor) -> Tensor:
        """(..., K, 2) image positions in [-1, 1] -> (..., K, 3) standardised world positions (the fitted map)."""
        with torch.autocast(positions.device.type, enabled=False):
            return torch.einsum("...kf,kfd->...kd", lift_features(positions.float()), self.lift)

    @torch.no_grad()
    def forward(self, frames: Tensor) -> Tensor:
        """(..., 3, H, W) uint8 -> (..., K, 2) image positions in [-1, 1], or (..., K, 3) world ones with
        `cfg.world` (frozen: no gradient)."""
        positions = self.pixels(frames)
        return self.lifted(positions) if self.cfg.world else positions

    def loss(self, frames: Tensor, centres: Tensor) -> Tensor:
        """Cross-entropy of each map against a Gaussian around its target (B, K, 2) px; NaN targets left out."""
        logits = self.logits(frames)  # (B, K, H * W)
        ok = torch.isfinite(centres).all(-1)  # (B, K)
        d2 = ((_grid(self.size, logits.device) - centres.nan_to_num()[..., None, :]) ** 2).sum(-1)
        target = (-d2 / (2 * self.cfg.sigma ** 2)).softmax(-1)  # (B, K, H * W)
        ce = -(target * logits.log_softmax(-1)).sum(-1)  # (B, K)
        return (ce * ok).sum() / ok.sum().clamp_min(1)


def lift_features(positions: Tensor) -> Tensor:
    """(..., K, 2) (u, v) -> (..., K, LIFT_FEATURES): 1, u, v, u^2, v^2, uv (a smooth camera inverse)."""
    u, v = positions.unbind(-1)
    return torch.stack([torch.ones_like(u), u, v, u * u, v * v, u * v], -1)


def fit_lift(net: KeypointNet, positions: np.ndarray, world: np.ndarray, alpha: float = 1e-3) -> np.ndarray:
    """Fit `net.lift`: ridge from image positions (N, K, 2) to standardised world positions (N, K, 3) per target
    (rows with a NaN position left out of that target's fit). Returns the R^2 of each target's fit (K,)."""
    r2 = np.zeros(len(net.lift))
    for k in range(len(net.lift)):
        ok = np.isfinite(positions[:, k]).all(-1) & np.isfinite(world[:, k]).all(-1)
        x = lift_features(torch.from_numpy(positions[ok, k]).double()).numpy()  # (n, F)
        y = world[ok, k].astype(np.float64)  # (n, 3), already standardised
        w = np.linalg.solve(x.T @ x + alpha * len(x) * np.eye(x.shape[1]), x.T @ y)  # (F, 3)
        net.lift[k] = torch.from_numpy(w).float()
        r2[k] = 1 - ((x @ w - y) ** 2).sum() / max(((y - y.mean(0)) ** 2).sum(), 1e-12)
    return r2


def train_keypoints(net: KeypointNet, frames: np.ndarray, centres: np.ndarray, rows: np.ndarray, seed: int = 0,
                    progress: bool = True) -> dict:
    """Fit `net` on `frames[rows]` (N, H, W, 3) uint8 against `centres[rows]` (N, K, 2) px, then freeze it.
    Returns the last 100 steps' mean loss, frames/s, and the median pixel error on those rows."""
    cfg = net.cfg
    if frames.shape[1:] != (net.size, net.size, 3) or len(centres) != len(frames):
        raise ValueError(f"train_keypoints expects frames (N, {net.size}, {net.size}, 3) and one centre row each, "
                         f"got {frames.shape} and {centres.shape}")
    rows = rows[np.isfinite(centres[rows]).all(-1).any(-1)]
    if not len(rows):
        raise ValueError("train_keypoints: no frame has a target in view")
    gen, device = np.random.default_rng(seed), next(net.parameters()).device
    torch.manual_seed(seed)
    net.train().requires_grad_(True)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps)
    losses, t0 = [], time.perf_counter()
    for _ in tqdm(range(cfg.steps), desc="keypoints", disable=not progress):
        pick = np.sort(gen.choice(rows, cfg.batch_size))
        x = torch.from_numpy(np.ascontiguousarray(frames[pick])).permute(0, 3, 1, 2).to(device)  # (B, 3, H, W)
        loss = net.loss(x, torch.from_numpy(centres[pick]).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    net.eval().requires_grad_(False)
    check = np.sort(gen.choice(rows, min(len(rows), 512), replace=False))
    with torch.no_grad():
        found = (net.pixels(torch.from_numpy(np.ascontiguousarray(frames[check])).permute(0, 3, 1, 2).to(device))
                 .cpu().numpy() + 1) / 2 * net.size  # (n, K, 2) px
    err = np.abs(found - centres[check])
    return {"loss": float(np.mean(losses[-100:])), "frames_per_s": cfg.steps * cfg.batch_size / (time.perf_counter() - t0),
            "median_px_error": float(np.nanmedian(err))}
