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
a training signal only (simulation); acting reads pixels. With `world`, a ridge map fitted on the training
frames lifts each position to the target's standardised xyz: one quadratic map for all tasks, and with
`per_task` one affine map per training instruction on top (`fit_task_lifts`), selected by the instruction's
embedding when acting. With `views` (more cameras, e.g. `corner`: a dataset filmed by `wam collect --views`),
the same convolutions read each camera's frame, with K maps of their own per view, and a target's position is
its (column, row) in every view: what the lift reads back the depth from (one camera loses it along its rays;
docs/runs/keypoints/two_view_ceiling.log).

Shapes: frames (B, 3 V, H, W) uint8 (the views' frames stacked on channels, the main camera first) -> logits
(B, V K, H, W) -> positions (B, K, 2 V) (column, row per view) in [-1, 1].
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
SAME_TASK = 0.999  # the cosine between an instruction's embedding and a task's key that selects its lift
TASK_BUFFERS = ("task_keys", "task_lift", "task_centre")  # sized when fitted (`fit_task_lifts`) or loaded


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
    # with `world`: one affine lift per training instruction besides the pooled map (`fit_task_lifts`): within a
    # task the image positions span a few pixels, where one map for every task misplaces them; an instruction the
    # lift was not fitted on (a paraphrase, a new task) gets the pooled map
    per_task: bool = False
    fine: int = 16  # channels of the full-resolution branch
    coarse: int = 32  # channels of the stride-4 branch
    # more cameras the detector reads besides the policy's (comma list, e.g. corner): the dataset's and the env's
    # `observation.images.<camera>`; a target's position is then its (column, row) in every view
    views: str = ""
    # the frame size the detector reads (0: the policy's, data.image_size): the recorded frames resized to it, e.g. the
    # 128 px source where a target is a few pixels at 64
    image_size: int = 0

    def names(self) -> list[str]:
        return [n.strip() for n in self.targets.split(",") if n.strip()]

    def view_list(self) -> list[str]:
        return [v.strip() for v in self.views.split(",") if v.strip()]

    def n_views(self) -> int:
        """The cameras the detector reads: the policy's, then `views`."""
        return 1 + len(self.view_list())

    def extra_dims(self) -> int:
        """State numbers the positions add: (column, row) per target and view, or its world (x, y, z) with `world`."""
        return (3 if self.world else 2 * self.n_views()) * len(self.names())

    def check(self) -> None:
        names = self.names()
        if [n for n in names if n not in KNOWN] or len(set(names)) != len(names):
            raise ConfigError(f"policy.keypoints.targets: a comma list of distinct {', '.join(KNOWN)}, "
                              f"got {self.targets!r}")
        for key in ("steps", "batch_size", "fine", "coarse"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"policy.keypoints.{key} must be an integer >= 1, got {value!r}")
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int) or self.image_size < 0:
            raise ConfigError(f"policy.keypoints.image_size must be an integer >= 0 (0: the policy's), got {self.image_size!r}")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 0:
            raise ConfigError(f"policy.keypoints.window must be an integer >= 0, got {self.window!r}")
        if self.per_task and not self.world:
            raise ConfigError("policy.keypoints.per_task lifts positions to the world per task: it needs "
                              "policy.keypoints.world=true")
        views = self.view_list()
        if views and not names:
            raise ConfigError(f"policy.keypoints.views={self.views} reads more cameras for keypoints: set "
                              f"policy.keypoints.targets")
        if len(set(views)) != len(views) or any(not v.replace("_", "").isalnum() for v in views):
            raise ConfigError(f"policy.keypoints.views: a comma list of distinct camera names, got {self.views!r}")
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
        k, f, c, v = len(cfg.names()), cfg.fine, cfg.coarse, cfg.n_views()
        self.cfg, self.size, self.views = cfg, image_size, v
        self.fine = nn.Sequential(nn.Conv2d(3, f, 3, padding=1), nn.GELU(), nn.Conv2d(f, f, 3, padding=1), nn.GELU(),
                                  nn.Conv2d(f, v * k, 1))
        dilated = [m for d in (1, 2, 4) for m in (nn.Conv2d(c, c, 3, padding=d, dilation=d), nn.GELU())]
        self.coarse = nn.Sequential(nn.Conv2d(3, c, COARSE, stride=COARSE), nn.GELU(), *dilated, nn.Conv2d(c, v * k, 1))
        # (K, F, 3), set by fit_lift: only with `world`, so image-position detectors hold no such tensor
        self.register_buffer("lift", torch.zeros(k, lift_size(v), 3) if cfg.world else None)
        per_task = cfg.world and cfg.per_task  # (T, D) instruction embeddings, (T, K, 1 + 2V, 3), (T, K, 2: mean/std, 2V)
        for name, shape in zip(TASK_BUFFERS, ((0, 0), (0, k, 1 + 2 * v, 3), (0, k, 2, 2 * v))):
            self.register_buffer(name, torch.zeros(shape) if per_task else None)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in TASK_BUFFERS:  # their first size is the number of fitted tasks: take the checkpoint's
            if getattr(self, name, None) is not None and prefix + name in state_dict:
                setattr(self, name, torch.zeros_like(state_dict[prefix + name], device=self.lift.device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def task_rows(self, text_emb: Tensor | None) -> Tensor | None:
        """(B, D) instruction embeddings -> (B,) the per-task lift each selects, -1 for the pooled map (an
        instruction no lift was fitted on); None without per-task lifts."""
        if text_emb is None or getattr(self, "task_keys", None) is None or not len(self.task_keys):
            return None
        emb = F.normalize(text_emb.float().to(self.task_keys.device), dim=-1)
        best, row = (emb @ F.normalize(self.task_keys, dim=-1).T).max(-1)  # (B,)
        return torch.where(best >= SAME_TASK, row, -1)

    def logits(self, frames: Tensor) -> Tensor:
        """(B, 3 V, H, W) uint8 -> (B, V K, H * W) float32: each view's own K maps from its frame, view by view."""
        b, v = frames.shape[0], self.views
        x = (frames.reshape(b * v, 3, *frames.shape[-2:]).float() / 255 - 0.5) / 0.25  # (B V, 3, H, W)
        up = F.interpolate(self.coarse(x), scale_factor=COARSE, mode="nearest")  # (B V, V K, H, W)
        maps = (self.fine(x) + up).flatten(2).float().reshape(b, v, v, -1, x.shape[-2] * x.shape[-1])
        return maps.diagonal(dim1=1, dim2=2).permute(0, 3, 1, 2).flatten(1, 2)  # (B, V K, H W): view i's maps of frame i

    def locate(self, logits: Tensor) -> Tensor:
        """(B, K, H * W) -> (B, K, 2) pixel positions (column, row): soft-argmax around each map's peak."""
        grid = _grid(self.size, logits.device)
        peak = grid[logits.argmax(-1)]  # (B, K, 2)
        near = (grid - peak[..., None, :]).abs().amax(-1) <= self.cfg.window  # (B, K, H * W)
        return logits.masked_fill(~near, float("-inf")).softmax(-1) @ grid

    def pixels(self, frames: Tensor) -> Tensor:
        """(..., 3 V, H, W) uint8 -> (..., K, 2 V) image positions in [-1, 1], always in fp32 (also inside the policy's
        bf16 autocast: the sub-pixel position is read off small logit differences; windows were found in fp32)."""
        lead = frames.shape[:-3]
        with torch.autocast(frames.device.type, enabled=False):
            px = self.locate(self.logits(frames.reshape(-1, *frames.shape[-3:])))  # (N, V K, 2)
        px = px.reshape(-1, self.views, px.shape[1] // self.views, 2).transpose(1, 2)  # (N, K, V, 2)
        return (px / self.size * 2 - 1).reshape(*lead, px.shape[1], 2 * self.views)

    def lifted(self, positions: Tensor, tasks: Tensor | None = None) -> Tensor:
        """(..., K, 2 V) image positions in [-1, 1] -> (..., K, 3) standardised world positions: the pooled map, or
        with `tasks` (the leading dims of `positions`, or fewer; from `task_rows`) each row's task lift (-1: pooled)."""
        with torch.autocast(positions.device.type, enabled=False):
            positions = positions.float()
            out = torch.einsum("...kf,kfd->...kd", lift_features(positions), self.lift)
            if tasks is None or (tasks < 0).all():
                return out
            tasks = tasks.to(positions.device).reshape(*tasks.shape, *[1] * (positions.dim() - 2 - tasks.dim()))
            centre = self.task_centre[tasks.clamp_min(0)]  # (..., K, 2, 2)
            z = (positions - centre[..., 0, :]) / centre[..., 1, :]  # (..., K, 2 V): standardised within the task
            own = torch.einsum("...kf,...kfd->...kd", F.pad(z, (1, 0), value=1.0), self.task_lift[tasks.clamp_min(0)])
            return torch.where((tasks >= 0)[..., None, None], own, out)

    @torch.no_grad()
    def forward(self, frames: Tensor, text_emb: Tensor | None = None) -> Tensor:
        """(B, ..., 3 V, H, W) uint8 -> (B, ..., K, 2 V) image positions in [-1, 1], or (B, ..., K, 3) world ones with
        `cfg.world` (with `per_task`, the lift of the instruction `text_emb` (B, D) names); frozen: no gradient."""
        positions = self.pixels(frames)
        return self.lifted(positions, self.task_rows(text_emb)) if self.cfg.world else positions

    def loss(self, frames: Tensor, centres: Tensor) -> Tensor:
        """Cross-entropy of each map against a Gaussian around its target (B, K, 2 V) px (column, row per view); NaN
        targets (out of a view) left out."""
        logits = self.logits(frames)  # (B, V K, H * W)
        b, k = centres.shape[:2]
        centres = centres.reshape(b, k, self.views, 2).transpose(1, 2).reshape(b, self.views * k, 2)  # the maps' order
        ok = torch.isfinite(centres).all(-1)  # (B, V K)
        d2 = ((_grid(self.size, logits.device) - centres.nan_to_num()[..., None, :]) ** 2).sum(-1)
        target = (-d2 / (2 * self.cfg.sigma ** 2)).softmax(-1)  # (B, K, H * W)
        ce = -(target * logits.log_softmax(-1)).sum(-1)  # (B, K)
        return (ce * ok).sum() / ok.sum().clamp_min(1)


def lift_size(views: int) -> int:
    """Features of the pooled lift: 1, then u, v, u^2, v^2, uv of each view."""
    return 1 + 5 * views


def lift_features(positions: Tensor) -> Tensor:
    """(..., K, 2 V) (u, v per view) -> (..., K, 1 + 5 V): 1, then u, v, u^2, v^2, uv of each view (a smooth
    inverse of the cameras)."""
    u, v = positions[..., 0::2], positions[..., 1::2]  # (..., K, V)
    per_view = torch.stack([u, v, u * u, v * v, u * v], -1).flatten(-2)  # (..., K, 5 V)
    return torch.cat([torch.ones_like(per_view[..., :1]), per_view], -1)


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[Tensor, float]:
    """Features (n, F) -> targets (n, 3): the ridge weights (F, 3) and the fit's R^2."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    w = np.linalg.solve(x.T @ x + alpha * len(x) * np.eye(x.shape[1]), x.T @ y)  # (F, 3)
    return torch.from_numpy(w).float(), 1 - ((x @ w - y) ** 2).sum() / max(((y - y.mean(0)) ** 2).sum(), 1e-12)


def _seen(positions: np.ndarray, world: np.ndarray, k: int) -> np.ndarray:
    """(N,) rows where target k has both an image and a world position."""
    return np.isfinite(positions[:, k]).all(-1) & np.isfinite(world[:, k]).all(-1)


def fit_lift(net: KeypointNet, positions: np.ndarray, world: np.ndarray, alpha: float = 1e-3) -> np.ndarray:
    """Fit `net.lift`: ridge from image positions (N, K, 2 V) to standardised world positions (N, K, 3) per target
    (rows with a NaN position left out of that target's fit). Returns the R^2 of each target's fit (K,)."""
    r2 = np.zeros(len(net.lift))
    for k in range(len(net.lift)):
        ok = _seen(positions, world, k)
        x = lift_features(torch.from_numpy(positions[ok, k]).double()).numpy()  # (n, F), in float64 as before
        net.lift[k], r2[k] = _ridge(x, world[ok, k], alpha)
    return r2


def fit_task_lifts(net: KeypointNet, positions: np.ndarray, world: np.ndarray, tasks: np.ndarray, keys: Tensor,
                   alpha: float = 1e-2) -> np.ndarray:
    """Fit one affine lift per task (`per_task`): for the rows of task t (`tasks` (N,), indices into `keys` (T, D),
    the tasks' instruction embeddings), a ridge from the positions standardised within the task to the world
    positions. A task without rows for every target keeps a zero key (its instruction gets the pooled map).
    Returns each task's and target's R^2 on its rows (T, K), NaN where not fitted."""
    k_all, dims = len(net.lift), positions.shape[-1]  # dims: 2 V
    lift, centre = torch.zeros(len(keys), k_all, 1 + dims, 3), torch.ones(len(keys), k_all, 2, dims)
    r2, fitted = np.full((len(keys), k_all), np.nan), torch.zeros(len(keys), dtype=torch.bool)
    for t in range(len(keys)):
        oks = [(tasks == t) & _seen(positions, world, k) for k in range(k_all)]
        if min(ok.sum() for ok in oks) < 1 + dims:
            continue
        for k, ok in enumerate(oks):
            p = positions[ok, k]
            centre[t, k, 0], centre[t, k, 1] = torch.from_numpy(p.mean(0)), torch.from_numpy(p.std(0) + 1e-6)
            z = (p - centre[t, k, 0].numpy()) / centre[t, k, 1].numpy()
            lift[t, k], r2[t, k] = _ridge(np.concatenate([np.ones((len(z), 1)), z], 1), world[ok, k], alpha)
        fitted[t] = True
    device = net.lift.device
    net.task_keys = torch.where(fitted[:, None], keys.float().cpu(), 0.0).to(device)
    net.task_lift, net.task_centre = lift.to(device), centre.to(device)
    return r2


def train_keypoints(net: KeypointNet, frames: np.ndarray, centres: np.ndarray, rows: np.ndarray, seed: int = 0,
                    progress: bool = True) -> dict:
    """Fit `net` on `frames[rows]` (N, H, W, 3 V) uint8 against `centres[rows]` (N, K, 2 V) px, then freeze it.
    The weights start from `seed` (re-initialised), and the global RNG is left as it was: the fit depends on the seed
    and the data only, so the arms of a matched comparison (one seed, one dataset) share one detector.
    Returns the last 100 steps' mean loss, frames/s, and the median pixel error on those rows."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in net.modules():
            if not list(module.parameters(recurse=False)):
                continue
            if not hasattr(module, "reset_parameters"):  # it would keep its construction-time weights: not the seed's
                raise TypeError(f"{type(module).__name__} in the keypoint detector has parameters but no "
                                f"reset_parameters(): the fit cannot start it from its seed")
            module.reset_parameters()
        return _fit(net, frames, centres, rows, seed, progress)


def _fit(net: KeypointNet, frames: np.ndarray, centres: np.ndarray, rows: np.ndarray, seed: int,
         progress: bool) -> dict:
    cfg = net.cfg
    if frames.shape[1:] != (net.size, net.size, 3 * net.views) or len(centres) != len(frames):
        raise ValueError(f"train_keypoints expects frames (N, {net.size}, {net.size}, {3 * net.views}) and one centre "
                         f"row each, got {frames.shape} and {centres.shape}")
    rows = rows[np.isfinite(centres[rows]).all(-1).any(-1)]
    if not len(rows):
        raise ValueError("train_keypoints: no frame has a target in view")
    gen, device = np.random.default_rng(seed), next(net.parameters()).device
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
