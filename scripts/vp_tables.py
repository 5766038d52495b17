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
`--pairs A:B,C:D [--pair_demos 2,5] [--pair_plot PNG]` prints only those differences at each demo size (the
ablations of configs/studies/video_pays_ablations.yaml: e.g. joint:joint_no_video), with a plot. `--tag STUDY=_2v`
renames that study's variants (`representation_kp_task_motfresh_2v`), to pair two studies of the same variant.
`--tasks window-open,window-close` counts those tasks' episodes only (e.g. the video-only tasks of a study).
`--also eval_paraphrase-1=_instr` reads each cell's second evaluation in that folder (here: the training
instruction, `extra_paraphrases: [-1]`) as the variant named with that suffix. A pair's side may be a difference
`X-Y` (scene by scene, same seed): `--pairs repr-repr_instr:scratch-scratch_instr` asks whether the paraphrase costs
one policy less than another, with the same bootstrap over scenes and t over seeds.
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
    return max(0.0, c - h), min(1.0, c + h)  # never -0.00: rounding of 0 successes


ONLY: set[str] = set()  # `--tasks`: only these tasks' episodes (names with or without their -v3)


def episodes(eval_dir: Path) -> dict[tuple[str, int], bool]:
    info = json.loads((eval_dir / "eval_info.json").read_text())
    keep = lambda task: not ONLY or task in ONLY or task.rsplit("-v", 1)[0] in ONLY  # noqa: E731
    return {(e["task"], e["seed"]): bool(e["success"]) for e in info["episodes"] if keep(e["task"])}


TAGS: dict[Path, str] = {}  # study folder -> a suffix for its variants' names (`--tag`)
ALSO: dict[str, str] = {}  # a cell's other evaluation folder -> a suffix for the variant it is read as (`--also`)


def cells(studies: list[Path], demos: int) -> dict[str, dict[int, dict]]:
    """variant -> seed -> {(task, scene): success} of every evaluated cell `<variant>__d<demos>__s<seed>` (the variant
    named with its study's `--tag` suffix, if any)."""
    out: dict[str, dict[int, dict]] = defaultdict(dict)
    for study in studies:
        for folder, suffix in {"eval": "", **ALSO}.items():
            for info in sorted(study.glob(f"cells/*__d{demos}__s*/{folder}/eval_info.json")):
                variant, _, seed = info.parent.parent.name.split("__")
                out[variant + TAGS.get(study, "") + suffix][int(seed[1:])] = episodes(info.parent)
    return out


def side(runs: dict[str, dict[int, dict]], name: str) -> dict[int, dict] | None:
    """A pair's side: a variant, or `X-Y`, each scene's X minus Y (in -1, 0, 1) in the seeds and scenes both have."""
    if name in runs or "-" not in name:
        return runs.get(name)
    x, y = (side(runs, part) for part in name.split("-", 1))
    if x is None or y is None:
        return None
    return {s: {k: float(x[s][k]) - float(y[s][k]) for k in sorted(set(x[s]) & set(y[s]))} for s in sorted(set(x) & set(y))}


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


def by_seed(a: dict[int, dict], b: dict[int, dict]) -> list[float]:
    """Each common seed's mean difference a - b over the scenes both saw."""
    return [float(np.mean([a[s][k] - b[s][k] for k in set(a[s]) & set(b[s])])) for s in sorted(set(a) & set(b))]


def t_interval(per: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t interval over seeds (seeds as the unit: training noise included); needs 2+ values."""
    half = T95[len(per) - 1] * np.std(per, ddof=1) / np.sqrt(len(per))
    return float(np.mean(per)), float(np.mean(per) - half), float(np.mean(per) + half)


def difference_text(a: dict[int, dict], b: dict[int, dict], rng) -> str:
    """a - b on the same scenes (bootstrap over scenes), then by seed with a t interval over seeds."""
    d = paired(a, b, rng)
    if d is None:
        return "-"
    text, per = f"{d[0]:+.2f} [{d[1]:+.2f}, {d[2]:+.2f}] ({d[3]} pairs)", by_seed(a, b)
    if len(per) > 1:
        m, lo, hi = t_interval(per)
        text += f"; by seed {', '.join(f'{x:+.2f}' for x in per)}: {m:+.2f} [{lo:+.2f}, {hi:+.2f}]"
    return text


def pair_rows(studies: list[Path], pairs: list[tuple[str, str]], demos: list[int], rng) -> list[dict]:
    """Each pair A - B at each demo size where both were run: successes and the paired differences."""
    rows = []
    for n in demos:
        runs = cells(studies, n)
        for a, b in pairs:
            runs.update({name: side(runs, name) for name in (a, b) if name not in runs})
            if runs[a] and runs[b]:
                d, per, seeds = paired(runs[a], runs[b], rng), by_seed(runs[a], runs[b]), sorted(set(runs[a]) & set(runs[b]))
                rate = lambda v: float(np.mean([x for s in seeds for x in runs[v][s].values()]))  # noqa: E731
                rows.append({"a": a, "b": b, "demos": n, "seeds": seeds,
                             "success_a": rate(a), "success_b": rate(b), "scenes": d, "per_seed": per,
                             "t": t_interval(per) if len(per) > 1 else None,
                             "text": difference_text(runs[a], runs[b], rng)})
    return rows


def pair_table(rows: list[dict]) -> list[str]:
    lines = ["| A - B | demos a task | seeds | A | B | A - B: same scenes (bootstrap 95% CI); by seed (t 95% CI) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['a']} - {r['b']} | {r['demos']} | {','.join(map(str, r['seeds']))} | {r['success_a']:.2f} "
                     f"| {r['success_b']:.2f} | {r['text']} |")
    return lines


def pair_plot(rows: list[dict], path: Path) -> None:
    """Each pair's difference at each demo size: the same-scenes interval (thick) and the seeds' (thin), seeds dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.4))
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        if r["t"]:
            ax.plot([r["t"][1], r["t"][2]], [y, y], color="#999999", lw=1.5)
        m, lo, hi, _ = r["scenes"]
        ax.plot([lo, hi], [y, y], color="#4c72b0", lw=5, alpha=0.8)
        ax.plot(m, y, "o", color="k", ms=5)
        ax.plot(r["per_seed"], [y] * len(r["per_seed"]), "x", color="#dd8452", ms=6)
    ax.axvline(0, color="k", lw=0.8)
    ax.axvline(0.15, color="#c44e52", lw=0.8, ls="--", label="+0.15 (issue 12's target)")
    ax.legend(loc="best", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"{r['a']} - {r['b']}, {r['demos']} demos" for r in reversed(rows)], fontsize=8)
    ax.set_xlabel("success difference A - B (mw5)")
    ax.set_title("dot: mean; blue: 95% CI over scenes; grey: 95% t over seeds; x: each seed", fontsize=8,
                 loc="right")  # ends at the axes' right edge: the long row names leave the axes narrow
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


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
        diff = difference_text(runs[v], runs[base], rng) if v != base and base in runs else "-"
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


def plot(runs: dict[str, dict[int, dict]], path: Path, demos: int, title: str = "video_pays") -> None:
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
    per_seed = sorted({len(e) for seeds in runs.values() for e in seeds.values()})
    tasks = ", ".join(sorted(ONLY)) or "every task"
    ax.set_ylabel(f"success ({tasks};\n{'/'.join(map(str, per_seed))} episodes a seed)", fontsize=8)
    ax.set_title(f"{title} at {demos} labelled demos a task:\npooled (bar, 95% CI) and each seed (dots)", fontsize=9)
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
    ap.add_argument("--pairs", default="", help="A:B,C:D: only these differences, at every --pair_demos")
    ap.add_argument("--pair_demos", default="2,5")
    ap.add_argument("--pair_plot", type=Path)
    ap.add_argument("--tag", action="append", default=[],
                    help="STUDY=SUFFIX: that study's variants are named with SUFFIX (two studies of one variant)")
    ap.add_argument("--title", default="video_pays", help="the plot's title, before ' at N labelled demos a task'")
    ap.add_argument("--tasks", default="", help="a comma list: every number over these tasks' episodes only")
    ap.add_argument("--also", action="append", default=[],
                    help="FOLDER=SUFFIX: each cell's FOLDER/eval_info.json too, as its variant named with SUFFIX")
    args = ap.parse_args()
    if any("=" not in a for a in args.also):
        ap.error(f"--also takes FOLDER=SUFFIX (e.g. eval_paraphrase-1=_instr), got {args.also}")
    ALSO.update({a.split("=", 1)[0]: a.split("=", 1)[1] for a in args.also})
    ONLY.update(t for t in args.tasks.split(",") if t)
    TAGS.update({Path(t.split("=", 1)[0]): t.split("=", 1)[1] for t in args.tag})
    if args.pairs:
        pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
        rows = pair_rows(args.study, pairs, [int(d) for d in args.pair_demos.split(",")], np.random.default_rng(0))
        print("\n".join(pair_table(rows)))
        if args.pair_plot:
            pair_plot(rows, args.pair_plot)
        return
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
        plot(runs, args.plot, args.demos, args.title)


if __name__ == "__main__":
    main()
