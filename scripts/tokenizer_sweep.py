"""Which frame tokenizer keeps what Meta-World tasks depend on? Train a few, probe each (issue 12).

    python scripts/tokenizer_sweep.py --data data/mw5_c2_128 --out runs/tok_sweep [--steps 600] [--only 64_d8,128_d8] \
        [--probe train_data=data/probe3_c2_128 --probe tasks=reach-v3,push-v3,pick-place-v3 --probe pixels=false] \
        [--plot sweep.png]

For each setting: train the tokenizer on the training episodes' frames (the probe's split: the last
20% of each task's episodes held out), time its training (CPU seconds per training frame: the cost
that comes back in every world-model step), then run `wam probe` on it (`--probe KEY=VALUE`: any `wam probe`
option, e.g. train_data: the goal needs ~200 distinct training goals to be read, docs/world_model.md). Prints two Markdown tables
(R² of object, goal and goal-in-image per task for the keypoint and the MLP probe, masked PSNR, cost) and writes <out>/sweep.json. Resumable: a
setting whose probe.json exists is not redone.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from wam.data.frames import cached_frames, episode_starts
from wam.data.lerobot_format import LeRobotDataset
from wam.nn.tokenizer import FrameAutoencoder, TokenizerConfig, reconstruction_report, save_tokenizer, train_autoencoder
from wam.config import apply_overrides
from wam.data.tasks import episodes_by_task
from wam.envs.target_masks import camera_of, dataset_centres
from wam.probe import ProbeConfig, run_probe, split_held_out

SETTINGS: dict[str, dict] = {  # name -> TokenizerConfig fields
    "64_d8": dict(image_size=64, downsample=8, latent_channels=8),  # today's default
    "64_d4": dict(image_size=64, downsample=4, latent_channels=8),
    "64_d8_fg": dict(image_size=64, downsample=8, latent_channels=8, foreground_weight=4.0),
    "96_d8": dict(image_size=96, downsample=8, latent_channels=8),
    "128_d8": dict(image_size=128, downsample=8, latent_channels=8),
    "128_d8_c16": dict(image_size=128, downsample=8, latent_channels=16),
    # base_channels=16: the pool world model's tokenizer (64_d4_b16) and the same 16x16x8 latent grid
    # (so the same world-model cost) read from 128 px frames, with and without the foreground weight
    "64_d4_b16": dict(image_size=64, downsample=4, latent_channels=8, base_channels=16),
    "128_d8_b16": dict(image_size=128, downsample=8, latent_channels=8, base_channels=16),
    "128_d8_b16_fg": dict(image_size=128, downsample=8, latent_channels=8, base_channels=16, foreground_weight=4.0),
    # the grid and the channels at 64 px: 32x32x8 (a world model with model.patch=8 sees as many tokens) and 16x16x16
    "64_d2_b16": dict(image_size=64, downsample=2, latent_channels=8, base_channels=16),
    "64_d4_c16_b16": dict(image_size=64, downsample=4, latent_channels=16, base_channels=16),
    # the pool world model's setting with its loss weighted inside discs around the recorded object and goal
    # (target_weight 30: the discs, ~1.6% of a 64 px frame, carry about a third of the loss)
    "64_d4_b16_tw30": dict(image_size=64, downsample=4, latent_channels=8, base_channels=16, target_weight=30.0),
}


def training_rows(ds: LeRobotDataset, val_fraction: float) -> np.ndarray:
    """Frame rows of the episodes `wam probe` trains on (never those it holds out)."""
    starts = episode_starts(ds)
    keep = [e for eps in episodes_by_task(ds).values() for e in split_held_out(eps, val_fraction)[0]]
    return np.concatenate([np.arange(starts[e], starts[e + 1]) for e in sorted(keep)])


def run_setting(name: str, ds: LeRobotDataset, key: str, out: Path, steps: int, probe_options: dict | None = None) -> dict:
    folder = out / name
    if (folder / "probe.json").exists():
        return json.loads((folder / "sweep_entry.json").read_text())
    cfg = TokenizerConfig(**SETTINGS[name])
    frames = cached_frames(ds, key, image_size=cfg.image_size, progress=False).frames
    rows = training_rows(ds, 0.2)
    torch.manual_seed(0)
    model = FrameAutoencoder(cfg)
    t0, cpu0 = time.perf_counter(), time.process_time()
    centres = dataset_centres(ds, camera_of(key), cfg.image_size)[rows] if cfg.target_weight > 0 else None
    metrics = train_autoencoder(model, np.asarray(frames[rows]), steps=steps, batch_size=64, progress=False,
                                centres=centres)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    report = reconstruction_report(model, np.asarray(frames[rows[::50]]))
    save_tokenizer(model, folder)
    probe = run_probe(apply_overrides(ProbeConfig(tokenizer=str(folder), data=str(ds.root), image_key=key), probe_options or {}))
    entry = {"name": name, "config": SETTINGS[name], "steps": steps, "train_wall_s": wall,
             "cpu_ms_per_frame": 1000 * cpu / (steps * 64), "psnr_train_frames": report["psnr"],
             "bf16": metrics.get("bf16"), "probe": probe["tasks"]}
    (folder / "sweep_entry.json").write_text(json.dumps(entry, indent=2) + "\n")
    return entry


def table(entries: list[dict], probe: str = "_spatial") -> str:
    """One row per setting: R² of object / goal / goal-in-image per task for one probe
    ("_spatial": the keypoint probe, "": the MLP), masked PSNR and cost."""
    tasks = sorted(entries[0]["probe"])
    head = ("| setting | latent | CPU ms/frame | " + " | ".join(f"{t} obj / goal / goal px" for t in tasks)
            + " | PSNR obj / goal (mean) |")
    lines = [head, "|" + "---|" * (4 + len(tasks))]
    for e in entries:
        c = e["config"]
        lat = f"{c['latent_channels']}x{c['image_size'] // c['downsample']}x{c['image_size'] // c['downsample']}"
        cells = []
        for t in tasks:
            m = e["probe"][t]
            vals = [m.get(f"r2_{k}_latent{probe}") for k in ("object", "goal", "goal_px")]
            cells.append(" / ".join("fixed" if v is None else f"{v:.2f}" for v in vals))
        po = np.mean([e["probe"][t]["psnr_object_tokenizer"] for t in tasks])
        pg = np.mean([e["probe"][t]["psnr_goal_tokenizer"] for t in tasks])
        lines.append(f"| {e['name']} | {lat} | {e['cpu_ms_per_frame']:.2f} | " + " | ".join(cells) + f" | {po:.1f} / {pg:.1f} |")
    return "\n".join(lines)


def plot(entries: list[dict], path: Path) -> None:
    """Held-out R² of the MLP probe, one panel per target, a group of bars per task, a bar per setting;
    the blurred-pixel baseline (where the sweep probed it) as a black tick on its setting's bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks, targets = sorted(entries[0]["probe"]), ("object", "goal", "goal_px")
    fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.6), sharey=True)
    width = 0.8 / len(entries)
    for ax, target in zip(axes, targets):
        for i, e in enumerate(entries):
            xs = np.arange(len(tasks)) + (i - (len(entries) - 1) / 2) * width
            ys = [e["probe"][t].get(f"r2_{target}_latent") for t in tasks]
            ax.bar(xs, [np.nan if y is None else max(y, -0.2) for y in ys], width, label=e["name"])
            px = [e["probe"][t].get(f"r2_{target}_pixels") for t in tasks]
            ax.scatter(xs, [np.nan if y is None else max(y, -0.2) for y in px], marker="_", s=120, color="k", zorder=3)
        ax.axhline(0.9, color="grey", ls="--", lw=1)
        ax.set_xticks(np.arange(len(tasks)), [t.removesuffix("-v3") for t in tasks])
        ax.set_title({"goal_px": "goal in the image"}.get(target, target), fontsize=10), ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("held-out R² (MLP probe)"), axes[0].set_ylim(-0.2, 1.0), axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--only", default="", help="comma-separated settings (default: all): " + ", ".join(SETTINGS))
    ap.add_argument("--plot", default="", help="a PNG of the MLP probe's R² by setting and task")
    ap.add_argument("--probe", action="append", default=[], metavar="KEY=VALUE", help="a `wam probe` option")
    args = ap.parse_args()
    if any("=" not in item for item in args.probe):
        ap.error(f"--probe takes KEY=VALUE, got {[i for i in args.probe if '=' not in i]}")
    probe = dict(item.split("=", 1) for item in args.probe)
    apply_overrides(ProbeConfig(), probe)  # an unknown option fails here, before any training
    ds = LeRobotDataset(args.data)
    key = next(k for k, f in ds.info["features"].items() if f.get("dtype") == "video")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = [n for n in (args.only.split(",") if args.only else SETTINGS) if n]
    entries = []
    for name in names:
        entries.append(run_setting(name, ds, key, out, args.steps, probe))
        (out / "sweep.json").write_text(json.dumps(entries, indent=2) + "\n")
        print("keypoint probe:\n" + table(entries) + "\n\nMLP probe:\n" + table(entries, ""), flush=True)
    if args.plot:
        plot(entries, Path(args.plot))


if __name__ == "__main__":
    main()
