"""`wam data info` and `wam data view`: what a dataset holds, and one episode to look at.

`describe` prints features, tasks, episode lengths, codec, size on disk and the action/state
statistics. `contact_sheet` writes a PNG: evenly spaced frames of an episode under its
instruction, and its actions (and proprio state) plotted against time with the shown frames
marked. `episode_video` writes an mp4: the episode's frames beside the same action plot with a
moving cursor.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from wam.data.lerobot_format import LeRobotDataset
from wam.data.video import encode_video
from wam.errors import ConfigError, DatasetError
from wam.runs.folders import output_file


def _disk_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and ".wam_cache" not in p.parts)


def describe(ds: LeRobotDataset) -> str:
    """A human-readable summary of a dataset."""
    lengths = np.array([e.length for e in ds.episodes]) if ds.episodes else np.zeros(1, int)
    lines = [
        f"dataset   {ds.root}",
        f"format    LeRobot {ds.info['codebase_version']}, robot {ds.info.get('robot_type')}, {ds.fps} fps",
        f"episodes  {ds.num_episodes}, frames {ds.num_frames} ({ds.num_frames / ds.fps:.1f} s), "
        f"length min/mean/max {lengths.min()}/{lengths.mean():.1f}/{lengths.max()}",
        f"on disk   {_disk_size(ds.root) / 1e6:.1f} MB",
        "features",
    ]
    for key, f in ds.features.items():
        extra = ""
        if f["dtype"] == "video":
            info = f.get("info", {})
            extra = f"  {info.get('video.codec', '?')} {info.get('video.pix_fmt', '')}"
        lines.append(f"  {key:34s} {f['dtype']:8s} {str(list(f['shape'])):14s}{extra}")
    counts = Counter(t for e in ds.episodes for t in e.tasks)
    names = {e.tasks[0]: e.extras.get("env_task", "") for e in ds.episodes}
    lines.append(f"tasks ({len(ds.tasks)})")
    for task in ds.tasks:
        lines.append(f"  {counts.get(task, 0):4d} episodes  {names.get(task, '') or '':24s} {task}")
    for key in ("observation.state", "action"):
        if key in ds.stats:
            s = ds.stats[key]
            fmt = lambda v: "[" + ", ".join(f"{x:+.2f}" for x in np.ravel(v)) + "]"  # noqa: E731
            lines.append(f"{key} mean {fmt(s['mean'])} std {fmt(s['std'])}")
            lines.append(f"{' ' * len(key)} min  {fmt(s['min'])} max {fmt(s['max'])}")
    lines.append(f"(metadata only: `wam data check {ds.root}` verifies the files themselves)")
    return "\n".join(lines)


def _pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _episode_frames(ds: LeRobotDataset, episode: int, key: str | None) -> tuple[str, np.ndarray]:
    """The video key to show (default: the first) and the episode's frames (T, H, W, 3)."""
    if not 0 <= episode < ds.num_episodes:
        raise ConfigError(f"--episode {episode} does not exist: the dataset has episodes 0..{ds.num_episodes - 1}")
    if key is None and not ds.video_keys:
        raise DatasetError(f"{ds.root / 'meta/info.json'}: the dataset declares no video feature, so there are "
                           f"no frames to show (its features: {', '.join(ds.features)})")
    key = key or ds.video_keys[0]
    return key, ds.decode_frames(key, episode)


def _series(ds: LeRobotDataset, episode: int) -> dict[str, np.ndarray]:
    keys = [k for k in ("action", "observation.state") if k in ds.features]
    return ds.read_columns(keys, [episode])


def _plot_series(ax, series: dict[str, np.ndarray], fps: int) -> None:
    for key, values in series.items():
        values = values.reshape(len(values), -1)
        t = np.arange(len(values)) / fps
        style = "-" if key == "action" else ":"
        for i in range(values.shape[1]):
            ax.plot(t, values[:, i], style, lw=1.2, label=f"{key.split('.')[-1]}[{i}]")
    ax.set_xlabel("time (s)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=7, ncol=4)


def contact_sheet(ds: LeRobotDataset, episode: int, out: str | Path, key: str | None = None,
                  num_frames: int = 12) -> Path:
    """A PNG of `num_frames` evenly spaced frames with the instruction and the actions plotted."""
    plt = _pyplot()
    key, frames = _episode_frames(ds, episode, key)
    shown = np.linspace(0, len(frames) - 1, min(num_frames, len(frames))).round().astype(int)
    cols = min(6, len(shown))
    rows = int(np.ceil(len(shown) / cols))
    fig = plt.figure(figsize=(2 * cols, 2 * rows + 2.6), dpi=100)
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[1] * rows + [1.3])
    for n, i in enumerate(shown):
        ax = fig.add_subplot(grid[n // cols, n % cols])
        ax.imshow(frames[i])
        ax.set_title(f"t={i}", fontsize=8)
        ax.axis("off")
    ax = fig.add_subplot(grid[rows, :])
    _plot_series(ax, _series(ds, episode), ds.fps)
    for i in shown:
        ax.axvline(i / ds.fps, color="k", alpha=0.15)
    ep = ds.episodes[episode]
    origin = f" ({ep.extras['env_task']}, seed {ep.extras.get('seed')})" if "env_task" in ep.extras else ""
    fig.suptitle(f'"{ep.tasks[0]}"\nepisode {episode}{origin}, {ep.length} frames, {key}', fontsize=10)
    fig.tight_layout()
    out = output_file(out)
    fig.savefig(out)
    plt.close(fig)
    return out


def episode_video(ds: LeRobotDataset, episode: int, out: str | Path, key: str | None = None,
                  height: int = 256) -> Path:
    """An mp4 of the episode (upscaled to `height`) beside its action plot with a moving cursor."""
    from PIL import Image

    plt = _pyplot()
    key, frames = _episode_frames(ds, episode, key)
    fig, ax = plt.subplots(figsize=(5.12, height / 100), dpi=100)
    _plot_series(ax, _series(ds, episode), ds.fps)
    ax.set_title(ds.episodes[episode].tasks[0], fontsize=8)
    fig.tight_layout()
    fig.canvas.draw()
    plot = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # (height, 512, 3)
    x0, x1 = ax.transData.transform([(0, 0), ((len(frames) - 1) / ds.fps, 0)])[:, 0]
    plt.close(fig)
    out_frames = []
    for i, frame in enumerate(frames):
        image = np.asarray(Image.fromarray(frame).resize((height, height), Image.NEAREST))
        panel = plot.copy()
        x = int(round(x0 + (x1 - x0) * i / max(len(frames) - 1, 1)))
        panel[:, max(x - 1, 0):x + 1] = (200, 30, 30)
        out_frames.append(np.concatenate([image, panel[:height]], axis=1))
    out = output_file(out)
    encode_video(np.stack(out_frames), out, ds.fps)
    return out
