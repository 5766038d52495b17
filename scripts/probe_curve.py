"""R² of the probe against the number of training goals it saw: is the representation or the probe's data short?

    python scripts/probe_curve.py runs/probe_50.json runs/probe_110.json runs/probe_all.json \
        --plot docs/media/probe_goals.png

Each file is one `wam probe` run on the same held-out episodes (the same --data), with a different number of
training episodes (--train_data / --train_episodes); a goal is fixed within an episode, so training episodes
are distinct goals. Prints a Markdown table (MLP probe, in brackets the ridge) and plots the MLP's R² per task.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

TARGETS = (("goal", "goal (world)"), ("goal_px", "goal in image"), ("object", "object (world)"))


def load(paths: list[Path]) -> list[dict]:
    runs = [json.loads(p.read_text()) for p in paths]
    held = {json.dumps({t: m["frames_held_out"] for t, m in r["tasks"].items()}, sort_keys=True) for r in runs}
    if len({r["data"] for r in runs}) > 1 or len(held) > 1:
        raise SystemExit("the runs must probe the same held-out episodes (one --data, the same tasks and stride)")
    return sorted(runs, key=lambda r: next(iter(r["tasks"].values()))["episodes_train"])


def table(runs: list[dict]) -> str:
    lines = ["| task | training goals | " + " | ".join(name for _, name in TARGETS) + " |",
             "|---|---|" + "---|" * len(TARGETS)]
    for task in runs[0]["tasks"]:
        for r in runs:
            m = r["tasks"][task]
            cells = [f"{m[f'r2_{t}_latent']:.2f} ({m[f'r2_{t}_latent_ridge']:.2f})" for t, _ in TARGETS]
            lines.append(f"| {task} | {m['episodes_train']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TARGETS), figsize=(4 * len(TARGETS), 3.4), sharey=True)
    for ax, (target, name) in zip(axes, TARGETS):
        for task in runs[0]["tasks"]:
            xs = [r["tasks"][task]["episodes_train"] for r in runs]
            ax.plot(xs, [r["tasks"][task][f"r2_{target}_latent"] for r in runs], marker="o", label=task)
        ax.axhline(0.9, color="grey", ls="--", lw=1)
        ax.set_title(name, fontsize=10), ax.set_xlabel("training episodes (distinct goals) a task"), ax.grid(alpha=0.3)
    axes[0].set_ylabel("held-out R² (MLP probe on the latents)"), axes[0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args()
    runs = load(args.runs)
    print(table(runs))
    if args.plot:
        plot(runs, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
