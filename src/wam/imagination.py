"""`wam imagine` and `wam imagine-eval`: look at and measure what a world model imagines.

`imagine` starts from a dataset frame (or a PNG) and an instruction, samples the future and writes
a video (mp4 or GIF) with the real future beside the imagined one when there is one. `--then`
chains a second instruction from the last imagined frame: the survey's composed-instruction probe
("do A, then do B"), next to the same text given as one instruction.

`imagine-eval` measures held-out episodes: PSNR and SSIM of the imagined future against the real
one, PSNR over the moving part of the future (pixels that change from the current frame), all
beside the copy-the-last-frame predictor; and the instruction-swap test: the same start frame
and noise with the right instruction vs. another task's, the PSNR margin with a bootstrap 95% CI.
On Meta-World data (a recorded `observation.environment_state`), also the PSNR inside a disc around
the object and around the goal in each future frame (wam.envs.target_masks): what the tasks depend
on, beside copy-last-frame, and the gain's 95% CI.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, UnidentifiedImageError

from wam.backbones.build import frame_tokenizer
from wam.checkpoint import load_checkpoint
from wam.data.frames import cached_frames, episode_starts
from wam.data.lerobot_format import LeRobotDataset
from wam.data.text import get_text_encoder
from wam.data.video import encode_video
from wam.envs.target_masks import ENV_STATE_KEY, TARGETS, camera_of, disc_mask, projections
from wam.errors import ConfigError, WamError
from wam.models.world_model import VideoWorldModel
from wam.nn.image_metrics import psnr, ssim
from wam.pretrain import PretrainConfig, build_world_model
from wam.runs.folders import output_file


def load_world_model(path: str | Path, use_ema: bool = True,
                     device: str | torch.device = "cpu") -> tuple[VideoWorldModel, PretrainConfig]:
    """A trained world model (EMA weights by default) and its run config, from a checkpoint, on `device`."""
    ckpt = load_checkpoint(path, kind=VideoWorldModel.kind)
    cfg = ckpt.config(PretrainConfig)
    model = build_world_model(cfg, frame_tokenizer(cfg.model.backbone, cfg.tokenizer_config()))  # its LAM, if any
    try:
        model.load_state_dict(ckpt.model)
    except RuntimeError as exc:  # missing / unexpected keys or other shapes
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise WamError(f"{ckpt.path / 'config.yaml'} does not describe the weights in {ckpt.path} "
                       f"({first[:200]}); was the config edited?") from None
    if use_ema and ckpt.ema is not None:
        with torch.no_grad():
            params = dict(model.named_parameters())
            for name, value in ckpt.ema.items():
                params[name].copy_(value)
    return model.to(device).eval(), cfg


def load_start_image(path: str | Path, size: int) -> np.ndarray:
    """A PNG/JPEG start frame as (size, size, 3) uint8; another size is refused, not guessed."""
    path = Path(path)
    if not path.is_file():
        raise WamError(f"no image at {path}")
    try:
        with Image.open(path) as opened:
            image = np.asarray(opened.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise WamError(f"--image {path} is not an image that can be read ({type(exc).__name__}: {exc}); "
                       "give a PNG or JPEG") from None
    if image.shape[:2] != (size, size):
        raise WamError(f"{path} is {image.shape[1]}x{image.shape[0]}; this world model takes {size}x{size} "
                       f"frames (resize it first, e.g. with PIL: Image.open(p).resize(({size}, {size})))")
    return image


def _imagine(model: VideoWorldModel, obs: np.ndarray, text: torch.Tensor, steps: int, seed: int,
             guidance: float, actions: np.ndarray | None = None) -> np.ndarray:
    """(B, To, H, W, 3) uint8 obs (+ (B, Ta, Da) actions) -> (B, Tf, H, W, 3) uint8 imagined frames."""
    frames = torch.from_numpy(obs).permute(0, 1, 4, 2, 3)
    g = torch.Generator().manual_seed(seed)
    if model.cfg.action_chunk and actions is None:
        raise WamError("this world model is conditioned on actions: only a dataset start (whose recorded "
                       "actions are used) can be imagined, not a PNG start or a --then continuation")
    acts = torch.from_numpy(actions).float() if model.cfg.action_chunk else None
    out = model.imagine(frames, text, actions=acts, steps=steps, guidance=guidance, generator=g)
    return (out.float().clamp(0, 1) * 255).round().byte().permute(0, 1, 3, 4, 2).cpu().numpy()


def _label(image: np.ndarray, text: str, scale: int) -> np.ndarray:
    big = Image.fromarray(image).resize((image.shape[1] * scale, image.shape[0] * scale), Image.NEAREST)
    ImageDraw.Draw(big).text((3, 2), text, fill=(255, 255, 0))
    return np.asarray(big)


def write_clip(panels: dict[str, np.ndarray], out: str | Path, fps: int = 3, scale: int = 3) -> Path:
    """Side-by-side panels, each (T, H, W, 3) uint8, as an mp4 or GIF (by the suffix of `out`)."""
    out = output_file(out)
    length = max(len(v) for v in panels.values())
    frames = []
    for i in range(length):
        row = [_label(v[min(i, len(v) - 1)], f"{name} {min(i, len(v) - 1)}", scale) for name, v in panels.items()]
        frames.append(np.concatenate(row, axis=1))
    if out.suffix == ".gif":
        images = [Image.fromarray(f) for f in frames]
        images[0].save(out, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    elif out.suffix == ".mp4":
        encode_video(np.stack(frames), out, fps)
    else:
        raise WamError(f"--out must end in .mp4 or .gif, got {out}")
    return out


@dataclass
class StartPoint:
    """Where imagination starts: obs frames and, when known, the real future."""

    obs: np.ndarray  # (To, H, W, 3) uint8
    future: np.ndarray | None  # (Tf, H, W, 3) uint8
    instruction: str
    actions: np.ndarray | None = None  # (Ta, Da) recorded actions, for action-conditioned models


def dataset_start(model: VideoWorldModel, cfg: PretrainConfig, ds: LeRobotDataset, episode: int,
                  frame: int) -> StartPoint:
    """Obs frames at `frame` of `episode` (edges repeated) and the real future where it exists."""
    if not 0 <= episode < ds.num_episodes:
        raise ConfigError(f"--episode {episode} does not exist (0..{ds.num_episodes - 1})")
    length = ds.episodes[episode].length
    if not 0 <= frame < length:
        raise ConfigError(f"--frame {frame} is outside episode {episode} (0..{length - 1})")
    key = cfg.data.image_key or ds.video_keys[0]
    frames = cached_frames(ds, key, image_size=cfg.data.image_size, progress=False)
    rows = lambda offs: frames.get(frames.episode_start(episode) + np.clip(frame + np.array(offs), 0, length - 1))  # noqa: E731
    has_future = frame + max(model.cfg.future) < length
    actions = None
    if model.cfg.action_chunk:
        recorded = ds.read_columns(["action"], [episode])["action"]
        actions = recorded[np.clip(frame + np.arange(model.cfg.action_chunk), 0, length - 1)]
    return StartPoint(rows(model.cfg.obs), rows(model.cfg.future) if has_future else None,
                      ds.episode_task(episode), actions)


def imagine_clip(model: VideoWorldModel, start: StartPoint, instructions: list[str], out: str | Path,
                 steps: int = 10, seed: int = 0, guidance: float = 1.0, encoder_kind: str = "minilm") -> Path:
    """Imagine from `start`, chaining one chunk per instruction, and write the clip."""
    if any(not s.strip() for s in instructions):
        raise ConfigError("an instruction must not be empty")
    text = get_text_encoder(encoder_kind).encode(instructions)
    obs, chunks = start.obs[None], []
    for i in range(len(instructions)):
        acts = start.actions[None] if start.actions is not None and i == 0 else None
        chunk = _imagine(model, obs, text[i:i + 1], steps, seed + i, guidance, acts)[0]
        chunks.append(chunk)
        obs = np.repeat(chunk[-1:][None], len(model.cfg.obs), axis=1)  # continue from the last frame
    current = start.obs[-1:]
    panels = {"imagined": np.concatenate([current, *chunks])}
    if start.future is not None:
        panels = {"real": np.concatenate([current, start.future]), **panels}
    return write_clip(panels, out)


def _moving_mask(current: torch.Tensor, future: torch.Tensor, threshold: float = 0.06) -> torch.Tensor:
    """(B, 1, H, W) pixels of `future` that differ from `current` (max over channels), dilated by 1."""
    diff = (future - current).abs().amax(1, keepdim=True) > threshold
    return torch.nn.functional.max_pool2d(diff.float(), 3, 1, 1) > 0


def moving_psnr(pred: torch.Tensor, real: torch.Tensor, current: torch.Tensor) -> float:
    """PSNR (dB) of predicted frames (T, 3, H, W) in [0, 1] against the real future over its moving part
    (pixels that change from `current`, (T, 3, H, W)), averaged over frames."""
    return psnr(pred, real, _moving_mask(current, real)).mean().item()


def bootstrap_ci(values: np.ndarray, groups: np.ndarray | None = None, seed: int = 0,
                 n: int = 2000) -> tuple[float, float]:
    """95% bootstrap interval of the mean of `values`; with `groups` (e.g. the episode of each value),
    whole groups are resampled (values within one are correlated), each value weighing the same."""
    values = np.asarray(values, dtype=np.float64)
    groups = np.arange(len(values)) if groups is None else np.asarray(groups)
    ids, which = np.unique(groups, return_inverse=True)
    sums, counts = np.bincount(which, values, len(ids)), np.bincount(which, minlength=len(ids))
    picks = np.random.default_rng(seed).integers(0, len(ids), (n, len(ids)))
    means = sums[picks].sum(1) / counts[picks].sum(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def swap_summary(right: np.ndarray, swapped: np.ndarray, groups: np.ndarray | None = None) -> dict:
    """The instruction-swap margin: moving-part PSNR with the right instruction minus with another task's."""
    margin = np.asarray(right) - np.asarray(swapped)
    return {"swap_margin_db": float(margin.mean()), "swap_margin_ci95": bootstrap_ci(margin, groups),
            "swap_margin_positive_fraction": float((margin > 0).mean())}


class TargetDiscs:
    """Per start point, (Tf, 1, H, W) discs around the object and the goal in its real future frames (Meta-World
    data only: `None` for a dataset without the environment state); one env per task projects every point."""

    def __init__(self, ds: LeRobotDataset, image_key: str, size: int, radius: float = 0.08):
        self.ds, self.camera, self.size, self.radius = ds, camera_of(image_key), size, radius
        self.state = ds.read_columns([ENV_STATE_KEY])[ENV_STATE_KEY] if ENV_STATE_KEY in ds.info["features"] else None
        self.starts = episode_starts(ds)

    def __call__(self, points: list[tuple[int, int]], offsets: tuple[int, ...]) -> list[dict] | None:
        """(episode, frame) start points -> [{"object": mask, "goal": mask}] for their future frames."""
        if self.state is None:
            return None
        rows = np.array([[self.starts[e] + f + o for o in offsets] for e, f in points])  # (P, Tf)
        tasks = [str(self.ds.episodes[e].extras.get("env_task", "")) for e, _ in points]
        out = [{} for _ in points]
        for task in set(tasks):
            if not task.endswith("-v3"):
                return None
            idx = [i for i, t in enumerate(tasks) if t == task]
            for name in ("object", "goal"):
                world = self.state[rows[idx].ravel()][:, TARGETS[name]]
                px = projections(task, self.camera, self.size, world).reshape(len(idx), len(offsets), 2)
                for i, p in zip(idx, px):
                    out[i][name] = disc_mask(p, self.size, self.radius)
        return out


def _masked_mse(pred: torch.Tensor, real: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean squared error inside `mask` (T, 1, H, W) over a clip's frames (T, 3, H, W) where the disc is in the
    frame (nan if it is in none); 0 for an exact copy."""
    return float(torch.nanmean(torch.pow(10.0, -psnr(pred, real, mask) / 10)))  # psnr inf -> 0, nan stays


def _disc_summary(arr: dict[str, np.ndarray], target: str) -> dict:
    """PSNR of the pooled MSE inside the target's disc (an exact copy has MSE 0: per-clip PSNRs would average
    infinities), for the world model and copy-last, and the MSE the world model removes, with its 95% CI."""
    wm, copy = arr[f"mse_{target}"], arr[f"copy_mse_{target}"]
    keep = np.isfinite(wm) & np.isfinite(copy)
    db = lambda mse: float(10 * np.log10(1 / max(mse.mean(), 1e-10)))  # noqa: E731
    gain = copy[keep] - wm[keep]  # > 0: the world model is nearer the real future than copying
    return {f"psnr_{target}": db(wm[keep]), f"copy_psnr_{target}": db(copy[keep]),
            f"mse_gain_over_copy_{target}": float(gain.mean()), f"mse_gain_over_copy_{target}_ci95": bootstrap_ci(gain),
            f"copy_exact_{target}_fraction": float((copy[keep] == 0).mean())}


def imagination_metrics(model: VideoWorldModel, cfg: PretrainConfig, ds: LeRobotDataset, episodes: list[int],
                        starts: int = 3, steps: int = 10, seed: int = 0, guidance: float = 1.0,
                        encoder_kind: str | None = None, batch: int = 16) -> dict:
    """Imagination quality on `episodes` against copy-last-frame, and the instruction-swap margin."""
    if len(ds.tasks) < 2:
        raise WamError("the instruction-swap test needs a dataset with at least two tasks")
    points, swapped, where = [], [], []
    for e in episodes:
        length = ds.episodes[e].length
        last = length - 1 - max(model.cfg.future)
        for f in np.linspace(0, max(last, 0), starts).round().astype(int) if last >= 0 else []:
            points.append(dataset_start(model, cfg, ds, e, int(f)))
            where.append((e, int(f)))
            other = (ds.tasks.index(ds.episode_task(e)) + 1) % len(ds.tasks)
            swapped.append(ds.tasks[other])
    if not points:
        raise WamError("no held-out episode is long enough to hold a whole future window")
    encoder = get_text_encoder(encoder_kind or cfg.text_encoder)
    right = encoder.encode([p.instruction for p in points])
    wrong = encoder.encode(swapped)
    discs = TargetDiscs(ds, cfg.data.image_key or ds.video_keys[0], cfg.data.image_size)(where, model.cfg.future)
    names = ("psnr", "psnr_moving", "ssim", "copy_psnr", "copy_psnr_moving", "copy_ssim", "swap_psnr_moving")
    if discs is not None:
        names += tuple(f"{p}mse_{t}" for t in ("object", "goal") for p in ("", "copy_"))
    rows: dict[str, list[np.ndarray]] = {k: [] for k in names}
    to_t = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    for i in range(0, len(points), batch):
        chunk = points[i:i + batch]
        obs = np.stack([p.obs for p in chunk])
        acts = np.stack([p.actions for p in chunk]) if model.cfg.action_chunk else None
        good = _imagine(model, obs, right[i:i + batch], steps, seed + i, guidance, acts)
        bad = _imagine(model, obs, wrong[i:i + batch], steps, seed + i, guidance, acts)  # same noise
        for j, p in enumerate(chunk):
            real, cur = to_t(p.future), to_t(np.repeat(p.obs[-1:], len(p.future), 0))
            for name, pred in (("", to_t(good[j])), ("copy_", cur), ("swap_", to_t(bad[j]))):
                rows[f"{name}psnr_moving"].append(moving_psnr(pred, real, cur))
                if name != "swap_":
                    rows[f"{name}psnr"].append(psnr(pred, real).mean().item())
                    rows[f"{name}ssim"].append(ssim(pred, real).mean().item())
                    for target, mask in (discs[i + j].items() if discs is not None else ()):
                        rows[f"{name}mse_{target}"].append(_masked_mse(pred, real, mask))
    arr = {k: np.array(v) for k, v in rows.items()}
    gain = arr["psnr_moving"] - arr["copy_psnr_moving"]
    return {
        "samples": len(points), "episodes": len(episodes), "steps": steps, "guidance": guidance,
        **{k: float(np.nanmean(v)) for k, v in arr.items()},  # nan: a disc outside every frame of a clip
        "gain_over_copy_moving_db": float(gain.mean()), "gain_over_copy_moving_ci95": bootstrap_ci(gain),
        **swap_summary(arr["psnr_moving"], arr["swap_psnr_moving"]),
        **{k: v for t in ("object", "goal") if f"mse_{t}" in arr for k, v in _disc_summary(arr, t).items()},
    }


def metrics_table(m: dict) -> str:
    """The metrics as a Markdown table."""
    ci = lambda k: f"[{m[k][0]:+.2f}, {m[k][1]:+.2f}]"  # noqa: E731
    return "\n".join([
        f"held-out: {m['episodes']} episodes, {m['samples']} start frames, {m['steps']} sampling steps, guidance {m['guidance']}",
        "", "| predictor | PSNR (dB) | PSNR moving part (dB) | SSIM |", "|---|---|---|---|",
        f"| world model | {m['psnr']:.2f} | {m['psnr_moving']:.2f} | {m['ssim']:.3f} |",
        f"| copy last frame | {m['copy_psnr']:.2f} | {m['copy_psnr_moving']:.2f} | {m['copy_ssim']:.3f} |",
        f"| world model, swapped instruction | | {m['swap_psnr_moving']:.2f} | |", "",
        *[f"inside a disc around the {t}: world model {m[f'psnr_{t}']:.2f} dB, copy last {m[f'copy_psnr_{t}']:.2f} dB "
          f"(PSNR of the pooled MSE; copy exact in {100 * m[f'copy_exact_{t}_fraction']:.0f}% of clips), MSE removed "
          f"by the world model {m[f'mse_gain_over_copy_{t}']:+.5f}, 95% CI [{m[f'mse_gain_over_copy_{t}_ci95'][0]:+.5f}, "
          f"{m[f'mse_gain_over_copy_{t}_ci95'][1]:+.5f}]" for t in ("object", "goal") if f"psnr_{t}" in m],
        f"gain over copy-last on the moving part: {m['gain_over_copy_moving_db']:+.2f} dB, 95% CI {ci('gain_over_copy_moving_ci95')}",
        f"instruction-swap margin: {m['swap_margin_db']:+.2f} dB, 95% CI {ci('swap_margin_ci95')}, "
        f"positive in {100 * m['swap_margin_positive_fraction']:.0f}% of start frames",
    ])


def held_out_episodes(run_dir: Path, ds: LeRobotDataset, data_path: str) -> list[int]:
    """The run's validation episodes when evaluating on its own dataset, else every episode."""
    split = run_dir / "split.json"
    if split.exists() and Path(data_path).resolve() == Path(ds.root).resolve():
        return json.loads(split.read_text())["val"]
    return list(range(ds.num_episodes))
