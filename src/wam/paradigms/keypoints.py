"""Fitting the policy's pixel stream (`policy.keypoints`, wam.nn.keypoints) before the policy trains.

    found = fit_keypoints(policy, ds, frames, train_eps, image_key)   # (N, K, 2) in [-1, 1], or None

The detector learns each target's pixel position from the labelled training episodes' frames (the positions
are recorded in simulation, `observation.environment_state`, projected by the camera's pinhole model in
`wam.envs.target_masks.dataset_centres`; episodes trained with their actions hidden stand for action-free video
and do not teach it), then freezes, its weights started from the run's seed; its positions for
every dataset frame are computed once and served to the policy's windows as `obs.keypoints`. Acting runs
the same frozen detector on the live frame (`WamPolicy.with_keypoints`). Held-out episodes never train it:
their median pixel error is printed and returned. With `policy.keypoints.views` the detector also reads those
cameras' frames (`detector_inputs`: the dataset's `observation.images.<camera>`, stacked on channels).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from wam.data.files import replace_via_temporary
from wam.data.frames import cache_dir, cached_frames, frame_rows
from wam.data.lerobot_format import LeRobotDataset
from wam.errors import DatasetError
from wam.envs.target_masks import ENV_STATE_KEY, TARGETS, camera_of, dataset_centres
from wam.nn.keypoints import KeypointConfig, KeypointNet, fit_lift, fit_task_lifts, train_keypoints

STILL_PX = 1e-4  # a target whose image position spreads less than this (pixels) does not move: no R^2


def view_keys(cfg: KeypointConfig, ds: LeRobotDataset) -> list[str]:
    """The video keys of `cfg.views` (policy.keypoints), refused with one line where `ds` has not got one."""
    views = [f"observation.images.{v}" for v in cfg.view_list()]
    missing = [k for k in views if k not in ds.video_keys]
    if missing:
        raise DatasetError(f"policy.keypoints.views={cfg.views} reads {', '.join(missing)}, which {ds.root} has not "
                           f"got (its videos: {', '.join(ds.video_keys)}); film them with `wam collect --views=...`")
    return views


def detector_inputs(cfg: KeypointConfig, ds: LeRobotDataset, frames: np.ndarray, image_key: str, size: int,
                    centres: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """What the detector of `cfg` (policy.keypoints) reads and learns from: every frame (N, size, size, 3 V) at the
    detector's `size`, the policy's camera (`frames`, decoded again if the policy's size is another) then each of
    `cfg.views`' (decoded once, resized alike), and with `centres` the targets' pixel centres (N, K, 2 V) in those
    views (NaN: not shown)."""
    views = view_keys(cfg, ds)
    if frames.shape[1] != size:
        frames = cached_frames(ds, image_key, image_size=size).frames
    stacked = np.concatenate([frames, *(cached_frames(ds, k, image_size=size).frames for k in views)], -1) \
        if views else frames
    where = None
    if centres:
        cams = [camera_of(k) for k in (image_key, *views)]
        where = np.concatenate([dataset_centres(ds, c, size, tuple(cfg.names())) for c in cams], -1)  # (N, K, 2 V)
    return stacked, where


@torch.no_grad()
def locate_all(net: torch.nn.Module, frames: np.ndarray, batch: int = 256) -> np.ndarray:
    """(N, H, W, 3 V) uint8 -> (N, K, 2 V) float32 image positions in [-1, 1], in batches."""
    device = next(net.parameters()).device
    out = [net.pixels(torch.from_numpy(np.array(frames[i:i + batch])).permute(0, 3, 1, 2).to(device)).cpu()
           for i in range(0, len(frames), batch)]
    return torch.cat(out).numpy().astype(np.float32)


@torch.no_grad()
def as_state(net: torch.nn.Module, positions: np.ndarray, tasks: np.ndarray | None = None) -> np.ndarray:
    """Image positions (N, K, 2) -> what the policy's state reads: the same, or lifted to the world (N, K, 3),
    with each row's task lift where `tasks` (N,) names one (`dataset_task_rows`; -1: the pooled map)."""
    if not net.cfg.world:
        return positions
    rows = None if tasks is None else torch.from_numpy(np.asarray(tasks, np.int64))
    return net.lifted(torch.from_numpy(positions).to(net.lift.device), rows).cpu().numpy().astype(np.float32)


def dataset_task_rows(net: KeypointNet, ds: LeRobotDataset, embeddings: torch.Tensor) -> np.ndarray | None:
    """(N,) the per-task lift each dataset frame's instruction selects (-1: the pooled map), found as when
    acting, by the instruction's embedding (`embeddings` (T_ds, D) of `ds.tasks`); None without per-task lifts."""
    found = net.task_rows(embeddings)  # (T_ds,)
    if found is None:
        return None
    return found.cpu().numpy()[ds.read_columns(["task_index"])["task_index"].reshape(-1)]


def fit_keypoints(policy: torch.nn.Module, ds: LeRobotDataset, frames: np.ndarray, train_eps: list[int],
                  image_key: str, progress: bool = True, val_eps: list[int] = (), seed: int = 0) -> np.ndarray | None:
    """Train the policy's detector (None when `policy.keypoints` is off) and return what the state reads for every
    dataset frame: its positions (N, K, 2 V) in [-1, 1], or with `world` the lifted (N, K, 3) (`as_state`)."""
    net = policy.keypoints
    if net is None:
        return None
    size = net.size
    frames, centres = detector_inputs(net.cfg, ds, frames, image_key, size)  # (N, H, W, 3 V), (N, K, 2 V) px
    rows = frame_rows(ds, train_eps)
    fit = fitted_once(net, frames, centres, rows, seed, progress, cache_dir(ds) / "keypoints")
    found = locate_all(net, frames)  # (N, K, 2 V) image positions
    report = f"keypoints ({net.cfg.targets}): median error {fit['median_px_error']:.2f} px on training frames"
    held = frame_rows(ds, list(val_eps))
    if len(held):
        err = np.abs((found[held] + 1) / 2 * size - centres[held])
        report += f", {np.nanmedian(err):.2f} px held out"
    print(f"{report} ({size} px frames, {fit['frames_per_s']:.0f} frames/s)")
    if not net.cfg.world:
        return found
    return _lifted(policy, ds, found, np.where(np.isfinite(centres[rows]), found[rows], np.nan), rows, train_eps)


def fitted_once(net: KeypointNet, frames: np.ndarray, centres: np.ndarray, rows: np.ndarray, seed: int,
                progress: bool, folder: Path) -> dict:
    """`train_keypoints`, or the detector an earlier run fitted from the same settings, frames, targets and seed,
    kept in `folder` (the dataset's cache): a study's arms of one seed fit the same detector, ~15 CPU-min each.
    The key also holds the torch version, the thread count and the device, so a reused detector is the one this
    run would have fitted. Returns the fit's report."""
    digest = hashlib.sha1(json.dumps([asdict(net.cfg), net.size, net.views, seed, torch.__version__,
                                      torch.get_num_threads(), next(net.parameters()).device.type]).encode())
    for start in range(0, len(rows), 1024):  # the training frames and their targets, a chunk at a time
        digest.update(np.ascontiguousarray(frames[rows[start:start + 1024]]).tobytes())
        digest.update(np.ascontiguousarray(centres[rows[start:start + 1024]]).tobytes())
    path = folder / f"detector_{digest.hexdigest()[:20]}.pt"
    if path.exists():
        try:
            saved = torch.load(path, map_location=next(net.parameters()).device, weights_only=True)
            net.load_state_dict(saved["state"])
            net.eval().requires_grad_(False)
            print(f"keypoints: the detector fitted earlier from these settings, frames and seed ({path})")
            return saved["fit"]
        except (OSError, RuntimeError, KeyError, TypeError, pickle.UnpicklingError) as exc:  # damaged, or other weights
            print(f"keypoints: {path} could not be read ({type(exc).__name__}); fitting the detector again")
    fit = train_keypoints(net, frames, centres, rows, seed=seed, progress=progress)
    replace_via_temporary(path, lambda tmp: torch.save({"state": net.state_dict(), "fit": fit}, tmp))
    return fit


def _lifted(policy: torch.nn.Module, ds: LeRobotDataset, found: np.ndarray, seen: np.ndarray, rows: np.ndarray,
            train_eps: list[int]) -> np.ndarray:
    """Fit the detector's lifts on the training rows' positions `seen` (NaN: the target not in view) and return every
    frame's lifted position (N, K, 3): the pooled map, and with `per_task` each task's."""
    net, names = policy.keypoints, policy.keypoints.cfg.names()
    world, mean, std = world_positions(ds, names, train_eps)
    target = (world[rows] - mean) / std  # standardised xyz of the training rows
    r2 = fit_lift(net, seen, target)
    print(f"keypoints lifted to the world: R^2 on training frames {', '.join(f'{n} {v:.2f}' for n, v in zip(names, r2))}")
    if not net.cfg.per_task:
        return as_state(net, found)
    task_index = ds.read_columns(["task_index"])["task_index"].reshape(-1)  # (N,): row t of the lifts is ds.tasks[t]
    keys = policy.text_encoder.encode(list(ds.tasks))  # (T, D): row t of the lifts is ds.tasks[t]
    r2 = fit_task_lifts(net, seen, target, task_index[rows], keys)
    fitted = np.isfinite(r2).all(-1)  # (T,)
    if not fitted.any():
        print("keypoints lifted per task: no task has frames of every target; the pooled map serves")
    else:
        spans = ", ".join(f"{n} {r2[fitted, k].min():.2f}-{r2[fitted, k].max():.2f}" for k, n in enumerate(names))
        print(f"keypoints lifted per task ({fitted.sum()} of {len(ds.tasks)} instructions): R^2 on training frames {spans}")
    return as_state(net, found, dataset_task_rows(net, ds, keys))


def world_positions(ds: LeRobotDataset, names: list[str], train_eps: list[int]) -> tuple[np.ndarray, ...]:
    """The targets' recorded xyz (N, K, 3) and the training frames' mean and std (K, 3), which the lift's
    standardised output is in."""
    state = ds.read_columns([ENV_STATE_KEY])[ENV_STATE_KEY]  # (N, 39)
    world = np.stack([state[:, TARGETS[n]] for n in names], 1)  # (N, K, 3)
    rows = frame_rows(ds, train_eps)
    return world, world[rows].mean(0), world[rows].std(0) + 1e-6


def keypoint_scores(found: np.ndarray, ds: LeRobotDataset, episodes: list[int], image_key: str, size: int,
                    names: list[str], lifted: np.ndarray | None = None, train_eps: list[int] = (),
                    centres: np.ndarray | None = None) -> dict:
    """How well the detector's positions `found` (N, K, 2 V) in [-1, 1] match the projected targets in `episodes`
    (held-out ones, for `wam eval-offline`): per target and task, R^2 of the (column, row) pixel position over
    that task's frames (None where the target does not move) and the median error in pixels of `size` px frames.
    The targets are projected in `image_key`'s camera, or given as `centres` (N, K, 2 V) px (`detector_inputs`).
    With `lifted` (N, K, 3), the lift's standardised xyz (`policy.keypoints.world`, fitted on `train_eps`), also
    `xyz_r2`: the pooled R^2 of the world position against the recorded one (wam.probe.r2)."""
    from wam.data.tasks import episodes_by_task
    from wam.probe import r2 as pooled_r2

    if centres is None:
        centres = dataset_centres(ds, camera_of(image_key), size, tuple(names))  # (N, K, 2) px, NaN: not shown
    px = (found + 1) / 2 * size
    if lifted is not None:
        world, mean, std = world_positions(ds, names, list(train_eps))
        xyz = lifted * std + mean  # (N, K, 3) in the recorded units
    held = set(episodes)
    out: dict = {name: {} for name in names}
    for task, eps in sorted(episodes_by_task(ds).items()):
        rows = frame_rows(ds, [e for e in eps if e in held])
        for k, name in enumerate(names):
            true, pred = centres[rows, k], px[rows, k]
            ok = np.isfinite(true).all(-1)
            if not ok.any():
                continue
            true, pred = true[ok], pred[ok]
            r2 = pooled_r2(pred, true, min_std=STILL_PX)
            out[name][task] = {"r2": None if r2 is None else round(r2, 4),
                               "median_px": round(float(np.median(np.abs(pred - true))), 4), "frames": int(ok.sum())}
            if lifted is not None:
                fit = pooled_r2(xyz[rows, k][ok], world[rows, k][ok])
                out[name][task]["xyz_r2"] = None if fit is None else round(fit, 4)
    return out
