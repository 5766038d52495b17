"""The frame tokenizer: a small convolutional autoencoder, RGB frames <-> a compact latent grid.

Trained once on a dataset's frames, then frozen; the world model works on its (normalized) latents,
patchified into a few dozen tokens per frame. CPU compute is the budget, so the latent is small:
a 64x64 frame becomes (C, 8, 8) with the default downsampling factor 8.

    model = FrameAutoencoder(TokenizerConfig(image_size=64))
    train_autoencoder(model, frames, steps=1500)       # frames: (N, 64, 64, 3) uint8
    z = model.normalize(model.encode(x))               # x: (..., 3, 64, 64) uint8 or float in [0, 1]
    x_hat = model.decode(model.denormalize(z))         # (..., 3, 64, 64) float in [0, 1]
    print(reconstruction_report(model, test_frames))   # PSNR / SSIM vs a bilinear baseline
    save_tokenizer(model, "checkpoints/tok"); model = load_tokenizer("checkpoints/tok")

Architecture: pixel-unshuffle stem, then per factor of 2 a GroupNorm+SiLU residual block and a
strided 3x3 conv (channels base, 2*base, 4*base); the decoder mirrors it with nearest upsampling and
ends in a pixel shuffle. No attention. A plain (deterministic) autoencoder: a small L2 penalty keeps
latents near unit scale, and per-channel mean/std (fit after training) make them ~unit variance.

Defaults were chosen by measurement on Meta-World MT10 frames (2 CPU cores; numbers in
docs of the tokenizer PR / the helper's report): DEFAULTS_NOTE below is filled in from that run.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from wam.errors import ConfigError, WamError
from wam.nn.image_metrics import discs, psnr, ssim

KIND = "wam-tokenizer"


@dataclass
class TokenizerConfig:
    image_size: int = 64  # input frames are (3, image_size, image_size)
    latent_channels: int = 8  # C of the (C, h, w) latent
    base_channels: int = 32  # width at the highest resolution; doubles per level, capped at 4x
    downsample: int = 8  # h = w = image_size / downsample; a power of 2, >= 2
    latent_l2: float = 1e-3  # weight of the mean(z^2) penalty that keeps latents well scaled
    edge_weight: float = 0.0  # weight of an L1 loss on image gradients (0 = off)
    foreground_weight: float = 0.0  # extra pixel weight where a frame differs from the mean frame (0 = off)
    # extra pixel weight inside discs around the recorded object and goal (training only: the centres come from
    # the dataset's state, wam.envs.target_masks.dataset_centres; a frame is encoded without them); 0 = off
    target_weight: float = 0.0
    target_radius: float = 0.05  # the discs' radius, a fraction of image_size

    def check(self) -> TokenizerConfig:
        d = self.downsample
        if d < 2 or d & (d - 1):
            raise ConfigError(f"tokenizer.downsample must be a power of 2 >= 2, got {d}")
        if self.image_size <= 0 or self.image_size % d:
            raise ConfigError(f"tokenizer.image_size ({self.image_size}) must be a positive multiple of downsample ({d})")
        for name in ("latent_channels", "base_channels"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"tokenizer.{name} must be positive, got {getattr(self, name)}")
        if min(self.latent_l2, self.edge_weight, self.foreground_weight, self.target_weight) < 0:
            raise ConfigError("tokenizer.latent_l2, edge_weight, foreground_weight and target_weight must be >= 0")
        if not 0 < self.target_radius <= 0.5:
            raise ConfigError(f"tokenizer.target_radius is a fraction of the image in (0, 0.5], got {self.target_radius}")
        return self

    @property
    def latent_size(self) -> int:
        return self.image_size // self.downsample


def _norm(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, ch), ch)


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.block = nn.Sequential(_norm(ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1),
                                   _norm(ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class FrameAutoencoder(nn.Module):
    """Frames (..., 3, H, W) <-> latents (..., C, H/d, W/d). See the module docstring."""

    def __init__(self, cfg: TokenizerConfig | None = None):
        super().__init__()
        self.cfg = cfg = (cfg or TokenizerConfig()).check()
        levels = int(math.log2(cfg.downsample))
        ch = [cfg.base_channels * min(2**i, 4) for i in range(levels)]  # width after each /2
        enc: list[nn.Module] = [nn.PixelUnshuffle(2), nn.Conv2d(12, ch[0], 3, padding=1)]
        for i in range(1, levels):
            enc += [ResBlock(ch[i - 1]), nn.Conv2d(ch[i - 1], ch[i], 3, stride=2, padding=1)]
        enc += [ResBlock(ch[-1]), _norm(ch[-1]), nn.SiLU(), nn.Conv2d(ch[-1], cfg.latent_channels, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(cfg.latent_channels, ch[-1], 3, padding=1), ResBlock(ch[-1])]
        for i in range(levels - 1, 0, -1):
            dec += [nn.Upsample(scale_factor=2.0, mode="nearest"), nn.Conv2d(ch[i], ch[i - 1], 3, padding=1), ResBlock(ch[i - 1])]
        dec += [_norm(ch[0]), nn.SiLU(), nn.Conv2d(ch[0], 12, 3, padding=1), nn.PixelShuffle(2)]
        self.decoder = nn.Sequential(*dec)
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_channels))
        self.register_buffer("latent_std", torch.ones(cfg.latent_channels))

    # -- frames <-> latents ------------------------------------------------------------------------
    def _to_input(self, frames: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        """(..., 3, H, W) uint8 or float in [0, 1] -> (N, 3, H, W) float, and the leading dims."""
        s = self.cfg.image_size
        if frames.ndim < 3 or frames.shape[-3] != 3 or frames.shape[-2:] != (s, s):
            raise ValueError(f"tokenizer expects frames of shape (..., 3, {s}, {s}), got {tuple(frames.shape)}; "
                             f"resize frames to image_size={s} or use a tokenizer trained at that size")
        frames = frames.to(self.latent_mean.device)  # inputs may come from the CPU; the model may not be there
        x = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
        dtype = self.latent_mean.dtype
        return x.reshape(-1, 3, s, s).to(dtype), tuple(frames.shape[:-3])

    def encode(self, frames: Tensor) -> Tensor:
        x, lead = self._to_input(frames)  # (N, 3, H, W)
        z = self.encoder(x)  # (N, C, h, w)
        return z.reshape(*lead, *z.shape[1:])  # (..., C, h, w)

    def _decode_raw(self, latents: Tensor) -> Tensor:
        c, h = self.cfg.latent_channels, self.cfg.latent_size
        if latents.ndim < 3 or latents.shape[-3:] != (c, h, h):
            raise ValueError(f"tokenizer expects latents of shape (..., {c}, {h}, {h}), got {tuple(latents.shape)}")
        y = self.decoder(latents.reshape(-1, c, h, h))  # (N, 3, H, W), unbounded
        return y.reshape(*latents.shape[:-3], *y.shape[1:])

    def decode(self, latents: Tensor) -> Tensor:
        return self._decode_raw(latents).clamp(0.0, 1.0)  # (..., 3, H, W) in [0, 1]

    def losses(self, frames: Tensor, mean_frame: Tensor | None = None,
               centres: Tensor | None = None) -> dict[str, Tensor]:
        """The training loss and its parts for a batch (..., 3, H, W). With cfg.foreground_weight > 0
        and `mean_frame` (3, H, W) in [0, 1], pixels that differ from it by > 0.1 (the arm and the
        objects, small on screen but what a policy needs) weigh 1 + foreground_weight in L1 and MSE.
        With cfg.target_weight > 0 and `centres` (N, K, 2) pixel positions (column, row; NaN = none), pixels
        within target_radius of one weigh 1 + target_weight more (a goal marker is 1-4 pixels of a frame)."""
        x, _ = self._to_input(frames)  # (N, 3, H, W)
        z = self.encoder(x)  # (N, C, h, w)
        y = self.decoder(z).float()  # (N, 3, H, W)
        w = torch.ones_like(x[:, :1])  # (N, 1, H, W)
        if self.cfg.foreground_weight > 0 and mean_frame is not None:
            w = w + self.cfg.foreground_weight * ((x - mean_frame).abs().amax(1, keepdim=True) > 0.1).float()
        if self.cfg.target_weight > 0:
            if centres is None or centres.shape[0] != x.shape[0]:
                raise ValueError("tokenizer.target_weight > 0 needs each frame's target centres (N, K, 2)")
            w = w + self.cfg.target_weight * discs(centres.to(x.device), x.shape[-1], self.cfg.target_radius).float()
        w = w / w.mean()
        out = {"l1": ((y - x).abs() * w).mean(), "mse": ((y - x) ** 2 * w).mean(), "latent_sq": (z.float() ** 2).mean()}
        loss = out["l1"] + out["mse"] + self.cfg.latent_l2 * out["latent_sq"]
        if self.cfg.edge_weight > 0:
            dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
            dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
            out["edge"] = (dx(y) - dx(x)).abs().mean() + (dy(y) - dy(x)).abs().mean()
            loss = loss + self.cfg.edge_weight * out["edge"]
        out["loss"] = loss
        out["recon"] = y.detach().clamp(0, 1)
        return out

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        out = self.losses(frames)
        return out["recon"].reshape(frames.shape), out["loss"]  # (..., 3, H, W), scalar

    # -- latent statistics -------------------------------------------------------------------------
    def normalize(self, latents: Tensor) -> Tensor:
        return (latents - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]  # (..., C, h, w)

    def denormalize(self, latents: Tensor) -> Tensor:
        return latents * self.latent_std[:, None, None] + self.latent_mean[:, None, None]

    @torch.no_grad()
    def fit_latent_stats(self, frames_iterable: Iterable | np.ndarray | Tensor, batch_size: int = 256) -> None:
        """Set latent_mean / latent_std per channel over all frames given.

        Accepts an iterable of batches, or one array: numpy arrays are channels-last (N, H, W, 3)
        uint8 (the dataset layout), tensors channels-first (..., 3, H, W).
        """
        if isinstance(frames_iterable, (np.ndarray, Tensor)):
            frames_iterable = [frames_iterable[i:i + batch_size] for i in range(0, len(frames_iterable), batch_size)]
        was_training = self.training
        self.eval()
        total, sq, count = 0.0, 0.0, 0
        for batch in frames_iterable:
            x = _hwc_to_tensor(batch) if isinstance(batch, np.ndarray) else batch
            z = self.encode(x).cpu().double().reshape(-1, self.cfg.latent_channels, self.cfg.latent_size ** 2)  # (N, C, hw)
            total = total + z.sum((0, 2))
            sq = sq + (z**2).sum((0, 2))
            count += z.shape[0] * z.shape[2]
        if count == 0:
            raise ValueError("fit_latent_stats got no frames")
        mean = total / count
        std = (sq / count - mean**2).clamp_min(1e-12).sqrt()
        self.latent_mean.copy_(mean.to(self.latent_mean.dtype))  # copy_ moves it to the buffer's device
        self.latent_std.copy_(std.clamp_min(1e-4).to(self.latent_std.dtype))
        self.train(was_training)


def _hwc_to_tensor(frames: np.ndarray) -> Tensor:
    """(N, H, W, 3) uint8 numpy -> (N, 3, H, W) uint8 tensor."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)


def train_autoencoder(model: FrameAutoencoder, frames: np.ndarray, steps: int, batch_size: int = 64, lr: float = 2e-3,
                      seed: int = 0, progress: bool = True, log: Callable[[int, dict], None] | None = None,
                      precision: str = "auto", log_every: int = 50, centres: np.ndarray | None = None) -> dict:
    """Train on random batches of `frames` (N, H, W, 3) uint8 with AdamW + cosine decay, then fit
    the latent statistics. `centres` (N, K, 2): each frame's object / goal pixel positions, needed with
    cfg.target_weight > 0 (wam.envs.target_masks.dataset_centres). `log(step, metrics)` is called every `log_every` steps and at the end.
    Runs on the model's device, autocast to `precision` (auto | fp32 | bf16 | fp16, chosen there by
    wam.runs.precision: bf16 is 20-50x slower than fp32 on CPUs without native bf16).
    Returns the final metrics (loss parts averaged over the last `log_every` steps, frames/s)."""
    from wam.runs.device import module_device
    from wam.runs.precision import choose_precision

    size = model.cfg.image_size
    if frames.ndim != 4 or frames.shape[1:] != (size, size, 3):
        raise ValueError(f"train_autoencoder expects frames (N, {size}, {size}, 3) uint8 for image_size={size}, "
                         f"got {frames.shape}")
    if model.cfg.target_weight > 0 and (centres is None or len(centres) != len(frames)):
        raise ValueError(f"tokenizer.target_weight={model.cfg.target_weight} needs `centres` for each of the "
                         f"{len(frames)} frames, got {None if centres is None else len(centres)}")
    device = module_device(model)
    prec = choose_precision(precision, device)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4, betas=(0.9, 0.99))
    warmup = max(1, min(100, steps // 20))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))))
    pick = np.random.default_rng(seed + 1).choice(len(frames), min(len(frames), 2048), replace=False)
    sample = frames[np.sort(pick)]
    mean_frame = (_hwc_to_tensor(sample).float().mean(0) / 255.0).to(device)  # (3, H, W), for foreground_weight
    scaler = prec.grad_scaler()
    model.train()
    sums: dict[str, float] = {}
    n_avg, metrics, t0 = 0, {}, time.perf_counter()
    bar = tqdm(range(steps), desc="tokenizer", disable=not progress)
    for step in bar:
        idx = np.sort(rng.integers(0, len(frames), batch_size))
        x = _hwc_to_tensor(frames[idx]).to(device)  # (B, 3, H, W) uint8
        c = torch.from_numpy(np.asarray(centres[idx])) if model.cfg.target_weight > 0 else None  # (B, K, 2)
        with prec.autocast():
            out = model.losses(x, mean_frame, c)
        opt.zero_grad(set_to_none=True)
        (scaler.scale(out["loss"]) if scaler else out["loss"]).backward()
        if scaler:
            scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt) if scaler else opt.step()
        if scaler:
            scaler.update()
        sched.step()
        for k, v in out.items():
            if k != "recon":
                sums[k] = sums.get(k, 0.0) + float(v.detach())
        n_avg += 1
        fps = (step + 1) * batch_size / (time.perf_counter() - t0)
        if (step + 1) % log_every == 0 or step + 1 == steps:
            metrics = {k: v / n_avg for k, v in sums.items()} | {"frames_per_s": fps, "lr": sched.get_last_lr()[0]}
            sums, n_avg = {}, 0
            bar.set_postfix(loss=f"{metrics['loss']:.4f}", fps=f"{fps:.0f}")
            if log is not None:
                log(step + 1, metrics)
    model.eval()
    model.fit_latent_stats(frames)
    return metrics | {"steps": steps, "seconds": time.perf_counter() - t0, "precision": prec.name}


@torch.no_grad()
def reconstruction_report(model: FrameAutoencoder, frames: np.ndarray, batch_size: int = 64) -> dict:
    """PSNR (dB) and SSIM of decode(encode(x)) vs x over frames (N, H, W, 3) uint8, and the same for
    a bilinear downsample-by-d-then-upsample baseline (3 channels per latent cell vs the AE's C)."""
    model.eval()
    d = model.cfg.downsample
    acc: dict[str, list[Tensor]] = {"psnr": [], "ssim": [], "baseline_psnr": [], "baseline_ssim": []}
    for i in range(0, len(frames), batch_size):
        x = _hwc_to_tensor(frames[i:i + batch_size]).float() / 255.0  # (B, 3, H, W)
        y = model.decode(model.encode(x)).float().cpu()
        small = F.interpolate(x, scale_factor=1 / d, mode="bilinear", antialias=True)
        base = F.interpolate(small, size=x.shape[-2:], mode="bilinear").clamp(0, 1)
        for name, r in (("", y), ("baseline_", base)):
            acc[name + "psnr"].append(psnr(r, x))
            acc[name + "ssim"].append(ssim(r, x))
    return {k: float(torch.cat(v).mean()) for k, v in acc.items()} | {"frames": len(frames)}


def save_tokenizer(model: FrameAutoencoder, dir: str | Path) -> Path:
    """Write `tokenizer.safetensors` (weights + latent stats) and `tokenizer.json` (config) in dir."""
    path = Path(dir)
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path / "tokenizer.safetensors"))
    (path / "tokenizer.json").write_text(json.dumps({"kind": KIND, "config": asdict(model.cfg)}, indent=2) + "\n")
    return path


def load_tokenizer(dir: str | Path) -> FrameAutoencoder:
    """Load a tokenizer written by save_tokenizer, in eval mode."""
    path = Path(dir)
    meta_file, weights_file = path / "tokenizer.json", path / "tokenizer.safetensors"
    if not meta_file.is_file() or not weights_file.is_file():
        raise WamError(f"{path} is not a wam tokenizer: expected tokenizer.json and tokenizer.safetensors in it")
    try:
        meta = json.loads(meta_file.read_text())
    except json.JSONDecodeError as e:
        raise WamError(f"{meta_file} is not valid JSON: {e}") from e
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        kind = meta.get("kind") if isinstance(meta, dict) else None
        raise WamError(f"{meta_file} has kind {kind!r}, expected {KIND!r}")
    known = {f.name for f in fields(TokenizerConfig)}
    cfg_dict = meta.get("config", {})
    unknown = sorted(set(cfg_dict) - known)
    if unknown:
        raise WamError(f"{meta_file}: unknown tokenizer config fields {unknown}")
    model = FrameAutoencoder(TokenizerConfig(**cfg_dict))
    try:
        model.load_state_dict(load_file(str(weights_file)))
    except RuntimeError as e:
        raise WamError(f"{weights_file} does not match its config in {meta_file}: {e}") from e
    return model.eval()
