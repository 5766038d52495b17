"""`wam eval-offline`: how close a policy's action chunks are to the demonstrations on held-out episodes.

    wam eval-offline --policy=runs/idm [--given_future=real] [--swap=true]

Closed-loop success cannot say whether a better imagined future would help acting; this can. On the
run's held-out validation episodes (the split `wam train` made), at `windows_per_episode` evenly
spaced frames of each, the policy predicts an action chunk from the same data path as training
(frames encoded by the policy's tokenizer, the same windows) and it is compared with the demo's
chunk: squared error in normalised units ([-1, 1]), averaged over the chunk's real steps (steps past
the episode's end left out) and action dims, one value per window (kept in `per_window`). Tasks trained from video alone
are scored against their real demo actions too (`per_task` marks them).

- `given_future=imagined` (default): the policy acts as in closed loop.
- `given_future=real`: paradigms that act from a future (`act(..., given_future=)`: inverse dynamics
  with tokens or latent actions; hierarchical, whose subgoal is a future frame) get the real future
  latents: the "future helps acting" upper bound. The imagined-future error is computed on the same
  windows with the same noise, and the paired difference reported.
- hierarchical: `per_offset`, the executor's error with the subgoal at each offset it trains on (the
  imagined frame; the real one too with `given_future=real`), given that offset: a cached plan ages.
- `swap`: the same windows and noise with another task's instruction (the next one in the dataset's
  task list, as `wam imagine-eval`): the action error, and for video paradigms the imagined future's
  PSNR over its moving part (windows whose future lies inside the episode), right vs swapped
  instruction, as paired margins.

95% intervals are bootstrap intervals that resample held-out episodes whole (windows of one
episode are correlated). Writes `<run>/eval_offline.json`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from wam.checkpoint import resolve_checkpoint
from wam.data.files import write_json_atomic
from wam.data.frames import frame_rows
from wam.data.tasks import resolve_tasks
from wam.data.text import get_text_encoder
from wam.data.windows import collate_windows
from wam.errors import ConfigError
from wam.imagination import bootstrap_ci, moving_psnr, swap_summary
from wam.paradigms import VARIANTS
from wam.paradigms.auxiliary import aux_r2, perceive
from wam.paradigms.keypoints import as_state, dataset_task_rows, detector_inputs, keypoint_scores, locate_all
from wam.paradigms.base import keep_mask
from wam.policy import WamPolicy
from wam.pretrain import LatentCollate, encode_all
from wam.runs.device import check_device
from wam.runs.precision import check_precision
from wam.train import TrainConfig, load_policy, open_data, policy_windows

FUTURES = ("imagined", "real")
FUTURE_ACTORS = sorted(f"{n}+{i}" for (n, i), cls in VARIANTS.items() if cls.acts_from_future)


@dataclass
class OfflineEvalConfig:
    policy: str = ""  # a `wam train` run folder or checkpoint
    given_future: str = "imagined"  # imagined | real (the real future latents, where the paradigm acts from one)
    swap: bool = False  # also score another task's instruction on the same windows
    windows_per_episode: int = 8  # evenly spaced anchor frames per held-out episode; 0 = every frame
    batch_size: int = 32
    seed: int = 0
    out: str = ""  # default: <run>/eval_offline.json
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"  # auto | fp32 | bf16 | fp16 (acting; auto measures, see wam.runs.precision)

    def check(self) -> None:
        check_device(self.device)
        check_precision(self.precision, "--precision")
        if not self.policy:
            raise ConfigError("--policy is required (a `wam train` run folder)")
        if self.given_future not in FUTURES:
            raise ConfigError(f"--given_future must be one of {', '.join(FUTURES)}, got {self.given_future!r}")
        if self.windows_per_episode < 0 or self.batch_size < 1:
            raise ConfigError("--windows_per_episode must be >= 0 and --batch_size >= 1")


def run_folder(path: str | Path) -> Path:
    """The run folder of a run or checkpoint path."""
    folder = resolve_checkpoint(path)
    return folder.parents[1] if folder.parent.name == "checkpoints" else folder


def anchors(lengths: np.ndarray, per_episode: int) -> np.ndarray:
    """Window indices: `per_episode` evenly spaced frames of each episode (every frame for 0)."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    picks = [s + (np.arange(n) if per_episode == 0 else np.unique(np.linspace(0, n - 1, per_episode).round()))
             for s, n in zip(starts, lengths)]
    return np.concatenate(picks).astype(int)


def chunk_error(pred: torch.Tensor, target: torch.Tensor, is_pad: torch.Tensor) -> np.ndarray:
    """(B,) squared error per window over its real steps: pred, target (B, Ta, Da), is_pad (B, Ta)."""
    keep = keep_mask(is_pad, target).float()
    return (((pred.float() - target) ** 2 * keep).sum((1, 2)) / keep.sum((1, 2)).clamp_min(1)).cpu().numpy()


def _decode(policy: WamPolicy, latents: torch.Tensor) -> torch.Tensor:
    """(B, Tf, C, h, w) latents -> (B, Tf, 3, H, W) frames in [0, 1]."""
    tok = policy.paradigm.parts.tokenizer
    frames = tok.decode(tok.denormalize(latents.flatten(0, 1).to(tok.latent_mean.dtype))).float().clamp(0, 1)
    return frames.reshape(*latents.shape[:2], *frames.shape[1:]).cpu()


def _act(policy: WamPolicy, prep: dict, seed: int, **given) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The action chunk and the future it was acted from (imagined by `imagine` when `act` made none)."""
    policy.reset()  # no cached plan (hierarchical) carries over between batches
    policy.paradigm.last_future = None
    with policy.precision.autocast():
        chunk = policy.paradigm.act(prep, generator=torch.Generator().manual_seed(seed), **given)
    return chunk.float(), policy.paradigm.last_future


def _future_of(policy: WamPolicy, prep: dict, seed: int, future: torch.Tensor | None) -> torch.Tensor:
    if future is not None:
        return future[:, :len(policy.paradigm.cfg.future)]
    with policy.precision.autocast():
        return policy.paradigm.imagine(prep, torch.Generator().manual_seed(seed))


def score_batch(policy: WamPolicy, batch: dict, pixels: dict, swap_text: torch.Tensor | None,
                cfg: OfflineEvalConfig, seed: int) -> dict[str, np.ndarray]:
    """Per-window errors (and swap scores) of one batch; the same noise for every variant of it."""
    prep = policy.prepare(batch)
    target, pad = prep["action"], prep["action_is_pad"]
    chunk, future = _act(policy, prep, seed)
    rows = {"imagined": chunk_error(chunk, target, pad)}
    if cfg.given_future == "real":
        rows["real"] = chunk_error(_act(policy, prep, seed, given_future=prep["future.latent"])[0], target, pad)
    rows.update(offset_errors(policy, prep, future, target, pad, cfg, seed))
    head = getattr(getattr(policy.paradigm, "parts", None), "aux_head", None)
    if head is not None and "aux.target" in prep:  # the auxiliary head's positions, (B, D) each
        rows["aux_pred"] = perceive(policy.paradigm.parts, prep).float().cpu().numpy()
        rows["aux_true"] = head.target(prep["aux.target"]).cpu().numpy()
    if swap_text is not None:
        other = {**prep, "text_emb": swap_text.to(policy.device)}
        swapped, swapped_future = _act(policy, other, seed)
        rows["swap_action"] = chunk_error(swapped, target, pad)
        if policy.paradigm.video:
            real = pixels["future.image"].float() / 255  # (B, Tf, 3, H, W)
            current = (pixels["obs.image"][:, -1:].float() / 255).expand_as(real)
            whole = ~pixels["future_is_pad"].any(1)  # a future past the episode's end is not scored (NaN)
            for name, p, f in (("psnr_moving", prep, future), ("swap_psnr_moving", other, swapped_future)):
                pred = _decode(policy, _future_of(policy, p, seed, f))
                rows[name] = np.array([moving_psnr(pred[j], real[j], current[j]) if whole[j] else np.nan
                                       for j in range(len(real))])
    return rows


def offset_errors(policy: WamPolicy, prep: dict, future: torch.Tensor | None, target: torch.Tensor,
                  pad: torch.Tensor, cfg: OfflineEvalConfig, seed: int) -> dict[str, np.ndarray]:
    """Hierarchical: the executor's error with the subgoal at each offset it was trained on (the imagined
    frame, and the real one with `given_future=real`), given that offset: how well it acts on an aged plan."""
    paradigm = policy.paradigm
    if not getattr(paradigm, "subgoal_offsets", False) or future is None:
        return {}
    rows = {}
    sources = {"imagined": future} | ({"real": prep["future.latent"]} if cfg.given_future == "real" else {})
    for i in paradigm.training_offsets():
        k = paradigm.cfg.future[i]
        for name, frames in sources.items():
            chunk = paradigm.act(prep, generator=torch.Generator().manual_seed(seed), given_subgoal=frames[:, i],
                                 offset=k)
            rows[f"offset_{k}_{name}"] = chunk_error(chunk, target, pad)
    return rows


def _summary(values: np.ndarray, episodes: np.ndarray) -> dict:
    return {"mse": float(values.mean()), "ci95": bootstrap_ci(values, episodes), "windows": int(len(values))}


def offline_eval(cfg: OfflineEvalConfig, progress: bool = True) -> dict:
    """Score the policy on its held-out episodes; returns (and writes) the result."""
    cfg.check()
    policy, tcfg = load_policy(cfg.policy, device=cfg.device, precision=cfg.precision)
    variant = f"{tcfg.paradigm}+{tcfg.policy.integration}"
    if cfg.given_future == "real" and variant not in FUTURE_ACTORS:
        raise ConfigError(f"{variant} does not act from a future that could be replaced; --given_future=real "
                          f"applies to {', '.join(FUTURE_ACTORS)}")
    run = run_folder(cfg.policy)
    ds, frames, _, val_eps = open_data(tcfg, progress=False)
    if cfg.swap and len(ds.tasks) < 2:
        raise ConfigError("--swap needs a dataset with at least two instructions")
    video = policy.paradigm.video
    found = centres = served = None
    if policy.keypoints is not None:  # (N, K, 2 V): policy.keypoints, in every view it reads
        seen, centres = detector_inputs(policy.keypoints.cfg, ds, frames, tcfg.data.image_key, policy.keypoints.size)
        found = locate_all(policy.keypoints, seen)
        tasks = dataset_task_rows(policy.keypoints, ds, policy.text_encoder.encode(list(ds.tasks)))
        served = as_state(policy.keypoints, found, tasks)  # what the run's windows were served
    windows = policy_windows(tcfg, ds, _inputs(policy, frames, frame_rows(ds, val_eps)), val_eps, video, keypoints=served)
    pixels = policy_windows(tcfg, ds, frames, val_eps, video) if cfg.swap and video else None
    cache = run / "text_cache.npz"
    table = get_text_encoder(tcfg.text_encoder, cache_path=cache if cache.exists() else None).encode(ds.tasks)
    collate = LatentCollate(table, latents=not policy.paradigm.pixels)
    picks = anchors(windows.lengths, cfg.windows_per_episode)
    out: dict[str, list[np.ndarray]] = {}
    for start in tqdm(range(0, len(picks), cfg.batch_size), desc="eval-offline", disable=not progress):
        idx = picks[start:start + cfg.batch_size]
        batch = collate([windows[int(i)] for i in idx])
        pix = collate_windows([pixels[int(i)] for i in idx]) if pixels is not None else {}
        swap_text = table[(batch["task_index"] + 1) % len(ds.tasks)] if cfg.swap else None
        for k, v in score_batch(policy, batch, pix, swap_text, cfg, cfg.seed + start).items():
            out.setdefault(k, []).append(v)
    scores = {k: np.concatenate(v) for k, v in out.items()}
    episodes = np.asarray(windows.episode_ids)[windows.sample_episode[picks]]
    result = summarise(scores, episodes, ds, _video_only(run, tcfg), cfg)
    if "aux_pred" in scores:  # how well the auxiliary head reads the positions on held-out episodes
        result["aux_r2"] = aux_r2(scores["aux_pred"], scores["aux_true"], tasks_of(ds, episodes),
                                  tcfg.policy.aux.names())
    if found is not None:  # how well the pixel stream finds its targets on held-out episodes (policy.keypoints)
        world = tcfg.policy.keypoints.world
        result["keypoints"] = keypoint_scores(found, ds, val_eps, windows.image_key, policy.keypoints.size,
                                              tcfg.policy.keypoints.names(), served if world else None,
                                              _lift_episodes(run) if world else (), centres)
    result.update(policy=str(cfg.policy), paradigm=tcfg.paradigm, integration=tcfg.policy.integration,
                  config=asdict(cfg))
    path = Path(cfg.out) if cfg.out else run / "eval_offline.json"
    write_json_atomic(result, path)  # a crash mid-write leaves the last whole file
    return result


def _lift_episodes(run: Path) -> list[int]:
    """The episodes the run's keypoint lift was fitted on: its labelled ones (split.json; runs before they were
    recorded fitted it on every training episode, actionless ones included)."""
    split = json.loads((run / "split.json").read_text())
    return split.get("labelled", split["train"])


def _inputs(policy, frames: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """What the policy's windows read: the frames (pixel reference) or latents of the held-out rows."""
    if policy.paradigm.pixels:
        return frames
    parts = policy.paradigm.parts
    latents = np.zeros((len(frames), parts.grid, parts.grid, parts.tokenizer.cfg.latent_channels), np.float32)
    latents[rows] = encode_all(parts.tokenizer, frames[rows])  # only the held-out episodes' rows are read
    return latents


def _video_only(run: Path, tcfg: TrainConfig) -> list[str]:
    tasks = run / "tasks.json"
    if tasks.exists():
        return json.loads(tasks.read_text()).get("video_only_tasks", [])
    return resolve_tasks(tcfg.data.video_only_tasks) if tcfg.data.video_only_tasks else []


def tasks_of(ds, episodes: np.ndarray) -> np.ndarray:
    """Each window's task: the episode's Meta-World task name, else its instruction."""
    return np.array([ds.episodes[e].extras.get("env_task") or ds.episode_task(e) for e in episodes])


def summarise(scores: dict[str, np.ndarray], episodes: np.ndarray, ds, video_only: list[str],
              cfg: OfflineEvalConfig) -> dict:
    """The JSON result: the chosen mode's error overall and per task, and the paired comparisons."""
    main = scores[cfg.given_future]
    task_of = tasks_of(ds, episodes)
    result = {"given_future": cfg.given_future, "episodes": int(len(np.unique(episodes))), **_summary(main, episodes),
              "per_task": {t: {**_summary(main[task_of == t], episodes[task_of == t]), "video_only": t in video_only}
                           for t in dict.fromkeys(task_of)},
              "per_window": {"episode": episodes.tolist(), "error": main.tolist()}}  # what the CIs resample
    if cfg.given_future == "real":
        diff = scores["real"] - scores["imagined"]
        result.update(imagined_mse=float(scores["imagined"].mean()),
                      imagined_ci95=bootstrap_ci(scores["imagined"], episodes),
                      real_minus_imagined=float(diff.mean()), real_minus_imagined_ci95=bootstrap_ci(diff, episodes))
    offsets = [k for k in scores if k.startswith("offset_")]
    if offsets:  # hierarchical: {offset: {imagined | real: {mse, ci95, windows}}}
        result["per_offset"] = {}
        for key in offsets:
            _, k, name = key.split("_")
            result["per_offset"].setdefault(k, {})[name] = _summary(scores[key], episodes)
    if cfg.swap:
        margin = scores["swap_action"] - scores["imagined"]  # > 0: the right instruction gives better actions
        swap = {"action_mse": float(scores["swap_action"].mean()), "action_margin": float(margin.mean()),
                "action_margin_ci95": bootstrap_ci(margin, episodes)}
        right, wrong = scores.get("psnr_moving"), scores.get("swap_psnr_moving")
        keep = np.isfinite(right) & np.isfinite(wrong) if right is not None else np.zeros(0, bool)
        if keep.any():  # windows whose whole future lies inside the episode and moves
            swap.update(psnr_windows=int(keep.sum()), psnr_moving=float(right[keep].mean()),
                        swap_psnr_moving=float(wrong[keep].mean()),
                        **swap_summary(right[keep], wrong[keep], episodes[keep]))
        result["swap"] = swap
    return result


def summary_text(r: dict) -> str:
    ci = lambda v: f"[{v[0]:.4f}, {v[1]:.4f}]"  # noqa: E731
    lines = [f"{r['paradigm']}+{r['integration']}, {r['given_future']} future: action MSE {r['mse']:.4f} "
             f"(95% CI {ci(r['ci95'])}) over {r['windows']} windows of {r['episodes']} held-out episodes"]
    if "real_minus_imagined" in r:
        lines.append(f"imagined future: {r['imagined_mse']:.4f}; real - imagined: {r['real_minus_imagined']:+.4f} "
                     f"(95% CI {ci(r['real_minus_imagined_ci95'])})")
    for k, by in r.get("per_offset", {}).items():
        lines.append(f"subgoal {k} steps ahead: " + ", ".join(f"{n} {v['mse']:.4f} (95% CI {ci(v['ci95'])})"
                                                              for n, v in by.items()))
    if "swap" in r:
        s = r["swap"]
        lines.append(f"swapped instruction: action MSE {s['action_mse']:.4f}, margin {s['action_margin']:+.4f} "
                     f"(95% CI {ci(s['action_margin_ci95'])})")
        if "swap_margin_db" in s:
            lines.append(f"imagined-future swap margin (moving part): {s['swap_margin_db']:+.2f} dB "
                         f"(95% CI {ci(s['swap_margin_ci95'])})")
    return "\n".join(lines)
