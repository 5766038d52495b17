"""The video_pays tables of docs/results.md section 5, and one plot, from finished runs (nothing is trained).

    python scripts/vp_tables.py --study runs/studies/video_pays_s0 [--study runs/studies/video_pays_lapa] \
        [--eval NAME=runs/vp_plan/plan_n16/eval] [--offline runs/vp_offline] --demos 5 --base action_only \
        --plot docs/media/video_pays_d5.png

Per variant at `--demos`: success pooled over seeds (95% Wilson interval over seeds x episodes), each seed's own,
per task, and the paired difference to `--base`: every variant is evaluated on the same scenes (task, episode k is
scene 10,000 + k for every seed and variant), so the difference is taken scene by scene within a seed and its 95%
interval bootstrapped over scenes (10,000 resamples, stratified by seed and task): it holds the trained policies
fixed. With 2+ seeds, also each seed's difference and a t interval over seeds, which includes training noise. `--eval NAME=FOLDER` adds a run
evaluated outside a study with the same protocol (compared with `--base` seed 0 only). `--offline` adds the
real-vs-imagined future table (eval_offline.json of each folder under it, and of the study cells).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np


T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}  # t(0.975, df)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p, d = k / n, 1 + z * z / n
    c, h = (p + z * z / (2 * n)) / d, z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def episodes(eval_dir: Path) -> dict[tuple[str, int], bool]:
    info = json.loads((eval_dir / "eval_info.json").read_text())
    return {(e["task"], e["seed"]): bool(e["success"]) for e in info["episodes"]}


def cells(studies: list[Path], demos: int) -> dict[str, dict[int, dict]]:
    """variant -> seed -> {(task, scene): success} of every evaluated cell `<variant>__d<demos>__s<seed>`."""
    out: dict[str, dict[int, dict]] = defaultdict(dict)
    for study in studies:
        for info in sorted(study.glob(f"cells/*__d{demos}__s*/eval/eval_info.json")):
            variant, _, seed = info.parent.parent.name.split("__")
            out[variant][int(seed[1:])] = episodes(info.parent)
    return out


def paired(a: dict[int, dict], b: dict[int, dict], rng: np.random.Generator, n: int = 10_000):
    """Mean of a - b over the scenes both saw, in the seeds both have; bootstrap CI stratified by seed and task."""
    strata = defaultdict(list)
    for seed in sorted(set(a) & set(b)):
        for key in sorted(set(a[seed]) & set(b[seed])):
            strata[(seed, key[0])].append(float(a[seed][key]) - float(b[seed][key]))
    diffs = [np.asarray(v) for v in strata.values()]
    total = sum(len(d) for d in diffs)
    if not total:
        return None
    boot = np.zeros(n)
    for d in diffs:
        boot += d[rng.integers(0, len(d), (n, len(d)))].sum(1)
    mean = sum(d.sum() for d in diffs) / total
    lo, hi = np.percentile(boot / total, [2.5, 97.5])
    return mean, lo, hi, total


def success_table(runs: dict[str, dict[int, dict]], base: str, rng) -> list[str]:
    tasks = sorted({t for seeds in runs.values() for eps in seeds.values() for t, _ in eps})
    lines = ["| variant | seeds | success [95% Wilson CI], pooled | per seed | minus " + base
             + " (paired, 95% CI) | " + " | ".join(t.removesuffix("-v3") for t in tasks) + " |",
             "|---" * (5 + len(tasks)) + "|"]
    order = sorted(runs, key=lambda v: -np.mean([s for eps in runs[v].values() for s in eps.values()]))
    for v in order:
        eps = [s for seed in runs[v].values() for s in seed.values()]
        k, n = int(sum(eps)), len(eps)
        lo, hi = wilson(k, n)
        per_seed = ", ".join(f"{np.mean(list(runs[v][s].values())):.2f}" for s in sorted(runs[v]))
        d = paired(runs[v], runs[base], rng) if v != base and base in runs else None
        diff = "-" if d is None else f"{d[0]:+.2f} [{d[1]:+.2f}, {d[2]:+.2f}] ({d[3]} pairs)"
        seeds = sorted(set(runs[v]) & set(runs.get(base, {}))) if d is not None else []
        per = [np.mean([runs[v][s][k] - runs[base][s][k] for k in runs[v][s]]) for s in seeds]
        if len(per) > 1:  # seeds as the unit: training noise included (t interval over the per-seed differences)
            half = T95[len(per) - 1] * np.std(per, ddof=1) / np.sqrt(len(per))
            diff += f"; by seed {', '.join(f'{x:+.2f}' for x in per)}: {np.mean(per):+.2f} [{np.mean(per) - half:+.2f}, " \
                    f"{np.mean(per) + half:+.2f}]"
        per_task = []
        for t in tasks:
            ts = [s for seed in runs[v].values() for (task, _), s in seed.items() if task == t]
            per_task.append(f"{np.mean(ts):.2f}" if ts else "-")
        lines.append(f"| {v} | {','.join(map(str, sorted(runs[v])))} | {k / n:.2f} [{lo:.2f}, {hi:.2f}] ({n} ep.) "
                     f"| {per_seed} | {diff} | " + " | ".join(per_task) + " |")
    return lines


def offline_table(folders: list[Path]) -> list[str]:
    """Held-out action MSE with the imagined future (as in closed loop) and, where the paradigm acts from a future,
    with the real one, paired on the same windows and noise; hierarchical also per subgoal offset."""
    ci = lambda v: f"[{v[0]:.4f}, {v[1]:.4f}]"  # noqa: E731
    lines = ["| run | paradigm | imagined future [95% CI] | real future [95% CI] | real - imagined (paired) |",
             "|---|---|---|---|---|"]
    for f in folders:
        o = json.loads((f / "eval_offline.json").read_text())
        if o["given_future"] == "real":
            imag = f"{o['imagined_mse']:.4f} {ci(o['imagined_ci95'])}"
            real, diff = f"{o['mse']:.4f} {ci(o['ci95'])}", f"{o['real_minus_imagined']:+.4f} " \
                                                                f"{ci(o['real_minus_imagined_ci95'])}"
        else:
            imag, real, diff = f"{o['mse']:.4f} {ci(o['ci95'])}", "-", "-"
        lines.append(f"| {f.name} | {o['paradigm']} | {imag} | {real} | {diff} |")
        for k, row in sorted(o.get("per_offset", {}).items(), key=lambda kv: int(kv[0])):
            lines.append(f"| {f.name}, subgoal {k} steps ahead | | {row['imagined']['mse']:.4f} | "
                         f"{row['real']['mse']:.4f} | |" if "real" in row else
                         f"| {f.name}, subgoal {k} steps ahead | | {row['imagined']['mse']:.4f} | - | |")
    return lines


def plot(runs: dict[str, dict[int, dict]], path: Path, demos: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = sorted(runs, key=lambda v: -np.mean([s for eps in runs[v].values() for s in eps.values()]))
    fig, ax = plt.subplots(figsize=(1.1 * len(order) + 2, 3.6))
    for i, v in enumerate(order):
        eps = [s for seed in runs[v].values() for s in seed.values()]
        lo, hi = wilson(int(sum(eps)), len(eps))
        ax.bar(i, np.mean(eps), color="#4c72b0", alpha=0.75)
        ax.errorbar(i, np.mean(eps), yerr=[[np.mean(eps) - lo], [hi - np.mean(eps)]], color="k", capsize=4)
        for seed, e in runs[v].items():
            ax.plot(i + 0.18, np.mean(list(e.values())), "o", color="#dd8452", ms=4)
    ax.set_xticks(range(len(order)), order, rotation=20)
    ax.set_ylabel("success (mw5, 100 episodes a seed)")
    ax.set_title(f"video_pays at {demos} labelled demos a task: pooled (bar, 95% CI) and each seed (dots)", fontsize=9)
    ax.set_ylim(0, 1)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", action="append", type=Path, default=[])
    ap.add_argument("--eval", action="append", default=[], help="NAME=FOLDER holding eval_info.json (seed 0)")
    ap.add_argument("--offline", type=Path)
    ap.add_argument("--demos", type=int, default=5)
    ap.add_argument("--base", default="action_only")
    ap.add_argument("--plot", type=Path)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    runs = cells(args.study, args.demos)
    for item in args.eval:
        name, folder = item.split("=", 1)
        runs[name] = {0: episodes(Path(folder))}
    print("\n".join(success_table(runs, args.base, rng)))
    if args.offline:
        folders = sorted(p.parent for p in args.offline.glob("*/eval_offline.json"))
        for study in args.study:
            folders += sorted(p.parent for p in study.glob(f"cells/*__d{args.demos}__s0/eval_offline.json"))
        print()
        print("\n".join(offline_table(folders)))
    if args.plot:
        plot(runs, args.plot, args.demos)


if __name__ == "__main__":
    main()
