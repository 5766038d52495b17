"""`wam probe`: does a frame representation keep what the tasks depend on? Measured, not eyeballed.

    wam probe --tokenizer=runs/wm --data=data/mw5 [--tasks=reach,push] [--out=probe.json]

From the frozen latents of ONE frame, a small probe (an MLP, and a ridge regression beside it)
trained on the training episodes regresses the hand, object and goal positions (read from the
dataset's 39-dim `observation.environment_state`: hand 0:3, object 4:7, goal 36:39) on held-out
episodes. Reported per task: R² of each target, for the tokenizer's latents and for the same frames
downsampled to the latent grid (a blur with as many cells: what the tokenizer must beat), and the
reconstruction PSNR inside a disc around the projected object and goal (the camera's pinhole model,
`MetaWorldEnv.project`), beside the bilinear baseline's. A target that does not vary across the
held-out frames of a task (e.g. a fixed goal) has no R² (reported as None).

Two more readings separate "the representation lost it" from "the probe cannot learn it":
- a spatial probe (conv layers on the latent grid, a spatial softmax into keypoints, a linear head:
  translation-equivariant, so it needs few distinct goal positions; a goal is fixed within an
  episode, so 24 demos a task give the flat MLP only ~19 distinct goals to learn from);
- the same targets in the image plane (`*_px`: the camera's projection of the object and goal,
  what one view can show; the world position also needs depth, which one camera sees only weakly).
Each episode's first frame is skipped: Meta-World renders its goal marker at the previous episode's
position until the first step.

How many distinct goals the probe learns from is the other limit, so it can take more training episodes
than the probed dataset holds: `--train_data` adds another dataset's episodes of the same tasks (e.g.
cheap action-free video of other scenes) to the training side only, and `--train_episodes=N` caps the
training episodes a task (the probed dataset's first): R² against N says whether the representation or
the probe's data is short.

    wam probe --tokenizer=runs/wm --data=data/mw5 --train_data=data/more_scenes --train_episodes=200
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from wam.data.files import write_json_atomic
from wam.data.frames import cached_frames, episode_starts
from wam.data.lerobot_format import LeRobotDataset
from wam.data.tasks import episodes_by_task
from wam.envs.target_masks import ENV_STATE_KEY, TARGETS, camera_of, disc_mask, projections
from wam.errors import ConfigError, WamError
from wam.nn.image_metrics import psnr
from wam.nn.tokenizer import FrameAutoencoder, load_tokenizer

MIN_STD = 2e-3  # metres: a target whose held-out spread is below this is "fixed" (no R²)


@dataclass
class ProbeConfig:
    tokenizer: str = ""  # a tokenizer folder, or a `wam pretrain` run holding tokenizer/
    data: str = "data/mw5"
    image_key: str = ""  # video feature; empty = the dataset's first
    tasks: str = ""  # Meta-World names or a suite, comma-separated; empty = all of the dataset
    val_fraction: float = 0.2  # of each task's episodes (the last ones), held out
    stride: int = 2  # every stride-th frame of an episode
    steps: int = 600  # MLP probe training steps (full batch, AdamW)
    hidden: int = 256
    seed: int = 0
    mask_radius: float = 0.08  # of the image size: the disc around the object and goal for masked PSNR
    out: str = ""  # probe.json; empty = <tokenizer folder>/probe.json
    train_data: str = ""  # more training episodes of the probed tasks (another dataset, other scenes); never held out
    train_episodes: int = 0  # at most this many training episodes a task (--data's first, then --train_data's); 0 = all
    targets: str = "hand,object,goal"  # which positions to regress (object and goal also in the image plane)
    pixels: bool = True  # also probe the frames blurred to the latent grid (the baseline; doubles the cost)

    def check(self) -> None:
        if not self.tokenizer:
            raise ConfigError("--tokenizer: name a tokenizer folder or a `wam pretrain` run")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"--val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.stride < 1 or self.steps < 1 or self.hidden < 1:
            raise ConfigError("--stride, --steps and --hidden must be >= 1")
        unknown = set(self.target_names()) - set(TARGETS)
        if unknown or not self.target_names():
            raise ConfigError(f"--targets: a comma list of {', '.join(TARGETS)}, got {self.targets!r}")
        if self.train_episodes < 0:
            raise ConfigError(f"--train_episodes must be >= 0 (0 = all), got {self.train_episodes}")
        if not 0 < self.mask_radius < 0.5:
            raise ConfigError(f"--mask_radius must be in (0, 0.5), got {self.mask_radius}")

    def target_names(self) -> list[str]:
        return [t.strip() for t in self.targets.split(",") if t.strip()]


def tokenizer_folder(path: str | Path) -> Path:
    """The tokenizer folder itself, or the tokenizer/ of a pretrain or train run."""
    p = Path(path)
    for cand in (p, p / "tokenizer"):
        if (cand / "tokenizer.json").is_file():
            return cand
    raise WamError(f"{p}: no tokenizer.json in it or in {p / 'tokenizer'}")


def r2(pred: np.ndarray, true: np.ndarray, min_std: float = MIN_STD) -> float | None:
    """Pooled R² over the coordinates of (N, D) targets; None when the target barely varies (its spread, the
    root mean squared distance from its mean, under `min_std`, in the target's units: metres by default)."""
    spread = true - true.mean(0)
    if np.sqrt((spread**2).sum(1).mean()) < min_std:
        return None
    return float(1 - ((pred - true) ** 2).sum() / (spread**2).sum())


def ridge_fit_predict(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray) -> np.ndarray:
    """Ridge regression on standardised features, its strength picked on the last fifth of the
    training rows (rows are in episode order, so that fifth is whole held-back episodes)."""
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    a, b = (x_tr - mu) / sd, (x_te - mu) / sd
    cut = int(len(a) * 0.8)
    best, best_err = 1.0, np.inf
    for alpha in (0.1, 1.0, 10.0, 100.0, 1000.0):
        w = _ridge(a[:cut], y_tr[:cut], alpha)
        err = float(((a[cut:] @ w[:-1] + w[-1] - y_tr[cut:]) ** 2).mean())
        if err < best_err:
            best, best_err = alpha, err
    w = _ridge(a, y_tr, best)
    return b @ w[:-1] + w[-1]


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    xm, ym = x.mean(0), y.mean(0)
    xc = x - xm
    w = np.linalg.solve(xc.T @ xc + alpha * len(x) * np.eye(x.shape[1]) / 100, xc.T @ (y - ym))  # (F, D)
    return np.vstack([w, ym - xm @ w])  # last row: bias


def _fit_predict(net: torch.nn.Module, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, cfg: ProbeConfig,
                 axes: tuple[int, ...], lr: float, weight_decay: float) -> np.ndarray:
    """Standardise features (over `axes`) and targets, draw every weight matrix from N(0, 1/fan-in) with
    cfg.seed, fit full-batch AdamW for cfg.steps, predict x_te in the targets' units."""
    g = torch.Generator().manual_seed(cfg.seed)
    mu, sd = x_tr.mean(axes, keepdims=True), x_tr.std(axes, keepdims=True) + 1e-6
    ym, ys = y_tr.mean(0), y_tr.std(0) + 1e-6
    xt = torch.from_numpy((x_tr - mu) / sd).float()
    yt = torch.from_numpy((y_tr - ym) / ys).float()
    for p in net.parameters():
        if p.ndim > 1:
            torch.nn.init.normal_(p, 0, (1 / p[0].numel()) ** 0.5, generator=g)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(cfg.steps):
        loss = F.mse_loss(net(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = net(torch.from_numpy((x_te - mu) / sd).float()).numpy()
    return out * ys + ym


def mlp_fit_predict(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, cfg: ProbeConfig) -> np.ndarray:
    """A 2-layer MLP probe on features x (N, F) (features and targets standardised)."""
    net = torch.nn.Sequential(torch.nn.Linear(x_tr.shape[1], cfg.hidden), torch.nn.GELU(),
                              torch.nn.Linear(cfg.hidden, cfg.hidden), torch.nn.GELU(),
                              torch.nn.Linear(cfg.hidden, y_tr.shape[1]))
    return _fit_predict(net, x_tr, y_tr, x_te, cfg, (0,), lr=1e-3, weight_decay=1e-2)


class KeypointProbe(torch.nn.Module):
    """Grids (N, C, h, w) -> targets (N, D): a per-cell MLP (1x1 convs) scores each cell for each keypoint,
    a spatial softmax turns the scores into the keypoint's expected column and row, a linear head maps
    the keypoints to every target at once."""

    def __init__(self, channels: int, size: tuple[int, int], targets: int, width: int, keypoints: int = 16):
        super().__init__()
        self.convs = torch.nn.Sequential(torch.nn.Conv2d(channels, width, 1), torch.nn.GELU(),
                                         torch.nn.Conv2d(width, keypoints, 1))
        self.head = torch.nn.Linear(2 * keypoints, targets)
        rows, cols = torch.meshgrid(torch.linspace(-1, 1, size[0]), torch.linspace(-1, 1, size[1]), indexing="ij")
        self.register_buffer("coords", torch.stack([cols.flatten(), rows.flatten()], 1))  # (h*w, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        att = self.convs(x).flatten(2).softmax(-1)  # (N, K, h*w)
        return self.head((att @ self.coords).flatten(1))  # (N, K, 2) -> (N, 2K) -> (N, D)


def spatial_fit_predict(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, cfg: ProbeConfig) -> np.ndarray:
    """The keypoint probe on grids x (N, C, h, w) (standardised per channel), all targets y (N, D) at once."""
    net = KeypointProbe(x_tr.shape[1], x_tr.shape[2:], y_tr.shape[1], min(cfg.hidden, 32))
    return _fit_predict(net, x_tr, y_tr, x_te, cfg, (0, 2, 3), lr=3e-3, weight_decay=1e-3)


def _features(tok: FrameAutoencoder, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]:
    """Latent (N, C, h, w) and blurred-pixel (N, 3, h, w) grids of frames (N, H, W, 3) uint8, and the
    reconstructions of the tokenizer and the bilinear baseline (N, 3, H, W) in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255  # (N, 3, H, W)
    lat, rec = [], []
    with torch.no_grad():
        for i in range(0, len(x), 256):
            z = tok.encode(x[i:i + 256])  # (n, C, h, w)
            lat.append(tok.normalize(z).float())
            rec.append(tok.decode(z).float().clamp(0, 1))
    h = tok.cfg.latent_size
    small = F.interpolate(x, size=(h, h), mode="bilinear", antialias=True)  # (N, 3, h, w)
    base = F.interpolate(small, size=x.shape[-2:], mode="bilinear").clamp(0, 1)
    return torch.cat(lat).numpy(), small.numpy(), torch.cat(rec), base


def probe_task(tok: FrameAutoencoder, frames: np.ndarray, state: np.ndarray, is_train: np.ndarray,
               cfg: ProbeConfig, project: Callable[[np.ndarray], np.ndarray] | None = None) -> dict:
    """Every measurement of one task; frames (N, H, W, 3), state (N, 39), is_train (N,) bool.
    `project` maps world points (N, 3) to pixels (N, 2) for the masked PSNR (skipped without it)."""
    lat, pix, rec, base = _features(tok, frames)
    out: dict = {"frames_train": int(is_train.sum()), "frames_held_out": int((~is_train).sum())}
    targets = {name: state[:, TARGETS[name]].astype(np.float64) for name in cfg.target_names()}
    if project is not None:  # where one camera shows the object and goal (column, row in pixels)
        targets.update({f"{n}_px": project(targets[n]) for n in ("object", "goal") if n in targets})
    for feat_name, grid in (("latent", lat), ("pixels", pix))[:2 if cfg.pixels else 1]:
        feat = grid.reshape(len(grid), -1)
        for name, y in targets.items():
            mlp = mlp_fit_predict(feat[is_train], y[is_train], feat[~is_train], cfg)
            ridge = ridge_fit_predict(feat[is_train], y[is_train], feat[~is_train])
            out[f"r2_{name}_{feat_name}"] = r2(mlp, y[~is_train])
            out[f"r2_{name}_{feat_name}_ridge"] = r2(ridge, y[~is_train])
        ys = np.concatenate(list(targets.values()), axis=1)  # (N, sum D): one keypoint probe for all
        pred = spatial_fit_predict(grid[is_train], ys[is_train], grid[~is_train], cfg)
        at = 0
        for name, y in targets.items():
            out[f"r2_{name}_{feat_name}_spatial"] = r2(pred[:, at:at + y.shape[1]], y[~is_train])
            at += y.shape[1]
    if project is None:
        return out
    size = frames.shape[1]
    x = torch.from_numpy(np.ascontiguousarray(frames[~is_train])).permute(0, 3, 1, 2).float() / 255
    for name in ("object", "goal"):  # the discs' PSNR: cheap, always
        mask = disc_mask(project(state[~is_train][:, TARGETS[name]]), size, cfg.mask_radius)
        for label, r in (("tokenizer", rec[~is_train]), ("bilinear", base[~is_train])):
            out[f"psnr_{name}_{label}"] = float(torch.nanmean(psnr(r, x, mask=mask)))
    return out


@dataclass
class _Source:
    """One dataset's frames (at the tokenizer's size), environment states and episodes per task."""

    path: str
    key: str  # the video feature read
    frames: np.ndarray  # (N, H, W, 3) uint8, memory-mapped
    state: np.ndarray  # (N, 39)
    starts: np.ndarray  # (E + 1,)
    seeds: list  # each episode's scene seed (None where not recorded)
    by_task: dict[str, list[int]]

    @classmethod
    def load(cls, path: str, key: str, size: int) -> _Source:
        """`key` empty: the dataset's first video feature."""
        ds = LeRobotDataset(path)
        features = ds.info["features"]
        key = key or next((k for k, f in features.items() if f.get("dtype") == "video"), "")
        for need in (key or "video", ENV_STATE_KEY):
            if need not in features:
                raise WamError(f"{path}: no '{need}' feature; the probe reads {key} frames and {ENV_STATE_KEY} "
                               f"(Meta-World data from `wam collect`)")
        return cls(path, key, cached_frames(ds, key, image_size=size, progress=False).frames,
                   ds.read_columns([ENV_STATE_KEY])[ENV_STATE_KEY], episode_starts(ds),
                   [ep.extras.get("seed") for ep in ds.episodes], episodes_by_task(ds))

    def rows(self, e: int, stride: int) -> np.ndarray:
        return np.arange(self.starts[e] + 1, self.starts[e + 1], stride)  # frame 0: stale goal marker


def split_held_out(episodes: list[int], val_fraction: float) -> tuple[list[int], list[int]]:
    """(training, held-out) episodes of one task: the last ceil(val_fraction * n), at least one, held out.
    What `wam probe` holds out, and what a tokenizer trained for a probe (scripts/tokenizer_sweep.py) must not see."""
    n_val = max(1, int(np.ceil(val_fraction * len(episodes))))
    return episodes[:len(episodes) - n_val], episodes[len(episodes) - n_val:]


def _task_split(task: str, main: _Source, extra: _Source | None,
                cfg: ProbeConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(frames, state, is_train, training episodes) of one task: --data's last val_fraction held out,
    training = --data's other episodes then --train_data's, capped at cfg.train_episodes."""
    eps = main.by_task[task]
    if len(eps) < 3:
        raise WamError(f"{cfg.data}: task {task} has {len(eps)} episodes; the probe needs at least 3")
    own, held = split_held_out(eps, cfg.val_fraction)
    train = [(main, e) for e in own]
    if extra is not None:
        more = extra.by_task.get(task, [])
        shared = {extra.seeds[e] for e in more} & {main.seeds[e] for e in held} - {None}
        if shared:
            raise WamError(f"--train_data {extra.path} holds scenes of {task} that {cfg.data} holds out "
                           f"(seeds {sorted(shared)[:5]}...): collect it with another --seed")
        train += [(extra, e) for e in more]
    train = train[:cfg.train_episodes or None]
    parts = [(src, src.rows(e, cfg.stride), True) for src, e in train]
    parts += [(main, main.rows(e, cfg.stride), False) for e in held]
    frames = np.concatenate([np.asarray(src.frames[r]) for src, r, _ in parts])
    state = np.concatenate([src.state[r] for src, r, _ in parts])
    is_train = np.concatenate([np.full(len(r), t) for _, r, t in parts])
    return frames, state, is_train, len(train)


def run_probe(cfg: ProbeConfig) -> dict:
    """Probe every task of the dataset; writes and returns {task: measurements} plus provenance."""
    from wam.data.tasks import resolve_tasks

    cfg.check()
    folder = tokenizer_folder(cfg.tokenizer)
    tok = load_tokenizer(folder)
    size = tok.cfg.image_size
    main = _Source.load(cfg.data, cfg.image_key, size)
    camera = camera_of(main.key)
    extra = _Source.load(cfg.train_data, main.key, size) if cfg.train_data else None
    wanted = set(resolve_tasks(cfg.tasks)) if cfg.tasks else None
    results, t0 = {}, time.perf_counter()
    for task in sorted(main.by_task):
        if wanted is not None and task not in wanted:
            continue
        frames, state, is_train, n_train = _task_split(task, main, extra, cfg)
        project = partial(projections, task, camera, size) if task.endswith("-v3") else None
        results[task] = {"episodes_train": n_train, **probe_task(tok, frames, state, is_train, cfg, project)}
    tcfg = tok.cfg
    info = {"tokenizer": str(folder), "data": cfg.data, "train_data": cfg.train_data,
            "train_episodes": cfg.train_episodes, "targets": cfg.target_names(), "pixels": cfg.pixels,
            "stride": cfg.stride, "camera": camera, "image_size": tcfg.image_size,
            "latent": [tcfg.latent_channels, tcfg.latent_size, tcfg.latent_size], "seconds": time.perf_counter() - t0,
            "tasks": results}
    out = Path(cfg.out) if cfg.out else folder / "probe.json"
    write_json_atomic(info, out)
    info["written"] = str(out)
    return info


def _fmt(v: float | None, digits: int = 2) -> str:
    return "fixed" if v is None else f"{v:.{digits}f}"


def probe_table(info: dict) -> str:
    """A Markdown table: per task and target, R² of the MLP / spatial probes on the latents (blurred
    pixels' best in brackets), and masked PSNR."""
    names = [n for n in (*TARGETS, "object_px", "goal_px") if any(f"r2_{n}_latent" in m for m in info["tasks"].values())]
    pix = lambda m, t: f" ({_fmt(best_r2(m, t, 'pixels'))})" if info.get("pixels", True) else ""  # noqa: E731
    more = f" (+ training episodes of {info['train_data']})" if info.get("train_data") else ""
    lines = [f"probe of {info['tokenizer']} ({info['image_size']} px, latent {info['latent']}) on {info['data']}{more}",
             "", "| task (training episodes) | " + " | ".join(f"R² {n}" for n in names) + " | PSNR object (tok / bilinear) | "
             "PSNR goal (tok / bilinear) |", "|---|" + "---|" * (len(names) + 2)]
    for task, m in info["tasks"].items():
        cells = [f"{_fmt(m.get(f'r2_{t}_latent'))} / {_fmt(m.get(f'r2_{t}_latent_spatial'))}{pix(m, t)}" for t in names]
        ps = [f"{m[f'psnr_{t}_tokenizer']:.1f} / {m[f'psnr_{t}_bilinear']:.1f}" if f"psnr_{t}_tokenizer" in m else "n/a"
              for t in ("object", "goal")]
        lines.append(f"| {task} ({m.get('episodes_train', '?')}) | " + " | ".join(cells + ps) + " |")
    lines.append("")
    lines.append("R²: MLP / spatial (keypoint) probe on the tokenizer's latents, held-out episodes; in brackets the "
                 "best probe on the frames blurred to the latent grid. `_px`: the target's position in the image. "
                 "PSNR in dB inside a disc around the projected object / goal.")
    return "\n".join(lines)


def best_r2(m: dict, target: str, features: str = "latent") -> float | None:
    """The best of the MLP, ridge and spatial probes' R² for one target (None if fixed or absent)."""
    vals = [m.get(f"r2_{target}_{features}{k}") for k in ("", "_ridge", "_spatial")]
    vals = [v for v in vals if v is not None]
    return max(vals) if vals else None
