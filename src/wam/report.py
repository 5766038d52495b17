"""The study report: `report.html` and `report.md` (+ `report_files/`) from a study directory.

    write_report(Path("studies/mw5"))   # or: wam report studies/mw5

Reads `summary.json` (one entry per cell: variant x demos x seed) and each cell's `log.csv` and
`eval/` folder. Cells are pooled over seeds (successes and episodes summed, a 95% Wilson interval on
the pool: seed-to-seed variation is shown by the faint points of the plots, not in the interval).
The comparison at the top uses the largest demo size. Sentences are computed from the numbers: whether
the outside reference (paradigm `conv_reference`) beats every WAM, and whether the intervals of the best
WAM and the action-only baseline overlap. Both files are built from one list of blocks, so they hold
the same content; PNGs and mp4 copies live in `report_files/` (the HTML links them rather than inlining,
so keep the folder beside it); videos are HTML5 <video> elements in the HTML and links in the Markdown.
"""

from __future__ import annotations

import datetime
import html
import json
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from wam.errors import WamError
from wam.evaluate import wilson
from wam.report_plots import plot_success_vs_demos, plot_success_vs_latency, plot_training_curves, variant_styles
from wam.report_render import md_block, render

NOT_WAM = ("action_only", "conv_reference")  # paradigms that are baselines, not World-Action Models
VIDEOS_PER_VARIANT = 2


@dataclass(frozen=True)
class Rate:
    """Successes out of episodes, with a 95% Wilson interval."""

    wins: int
    n: int

    @property
    def success(self) -> float | None:
        return self.wins / self.n if self.n else None

    @property
    def ci(self) -> tuple[float, float]:
        return wilson(self.wins, self.n)

    def text(self) -> str:
        return "—" if not self.n else f"{self.success:.2f} [{self.ci[0]:.2f}, {self.ci[1]:.2f}]"

    def overlaps(self, other: Rate) -> bool:
        return self.ci[0] <= other.ci[1] and other.ci[0] <= self.ci[1]


def _rate(entry: dict) -> Rate:
    """A cell's (or a cell's task's) success and episodes as whole successes out of episodes."""
    n = int(entry.get("episodes") or 0)
    return Rate(round((entry.get("success") or 0.0) * n), n) if entry.get("success") is not None else Rate(0, 0)


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


@dataclass
class Group:
    """The cells of one variant at one demo size, pooled over seeds."""

    variant: str
    paradigm: str
    integration: str
    init: str
    video_weight: float
    demos: int
    cells: list[dict]

    @property
    def overall(self) -> Rate:
        rates = [_rate(c) for c in self.cells]
        return Rate(sum(r.wins for r in rates), sum(r.n for r in rates))

    @property
    def per_task(self) -> dict[str, Rate]:
        tasks = dict.fromkeys(t for c in self.cells for t in c.get("per_task", {}))
        return {t: Rate(sum(_rate(c["per_task"][t]).wins for c in self.cells if t in c.get("per_task", {})),
                        sum(_rate(c["per_task"][t]).n for c in self.cells if t in c.get("per_task", {})))
                for t in tasks}

    def seed_success(self, task: str | None = None) -> list[float]:
        """Each seed's own success (overall, or on `task`)."""
        entries = [c if task is None else c.get("per_task", {}).get(task, {}) for c in self.cells]
        return [e["success"] for e in entries if e.get("success") is not None]

    def seeds_text(self) -> str:
        """How many seeds have results, and how many failed (no episodes)."""
        failed = sum(not _rate(c).n for c in self.cells)
        return f"{len(self.cells) - failed}" + (f" ({failed} failed)" if failed else "")

    @property
    def ms(self) -> float | None:
        return _mean([c.get("ms_per_chunk") for c in self.cells])

    @property
    def is_wam(self) -> bool:
        return self.paradigm not in NOT_WAM

    def mean_of(self, key: str) -> float | None:
        return _mean([c.get(key, c.get("extra", {}).get(key)) for c in self.cells])


def load_summary(study_dir: Path) -> dict:
    path = Path(study_dir) / "summary.json"
    if not path.is_file():
        raise WamError(f"{path} not found: is {study_dir} a study directory (the study runner writes it)?")
    return json.loads(path.read_text())


def group_cells(cells: list[dict]) -> list[Group]:
    """Cells grouped by (variant, demos), variants in order of appearance, demos ascending."""
    keys: dict[tuple[str, int], list[dict]] = {}
    for c in cells:
        keys.setdefault((c["variant"], int(c["demos"])), []).append(c)
    order = list(dict.fromkeys(c["variant"] for c in cells))
    groups = []
    for (variant, demos), mine in sorted(keys.items(), key=lambda kv: (order.index(kv[0][0]), kv[0][1])):
        c = mine[0]
        groups.append(Group(variant, c.get("paradigm", "?"), c.get("integration", "-"), c.get("init", "-"),
                            float(c.get("video_weight", 0.0)), demos, sorted(mine, key=lambda x: x.get("seed", 0))))
    return groups


def headline(groups: list[Group]) -> tuple[int, list[Group]]:
    """The largest demo size and the groups run at it (the comparison the report leads with)."""
    demos = max(g.demos for g in groups)
    return demos, [g for g in groups if g.demos == demos and g.overall.n]


def best(groups: list[Group]) -> Group | None:
    """Highest pooled success; ties go to the higher lower bound."""
    scored = [g for g in groups if g.overall.n]
    return max(scored, key=lambda g: (g.overall.success, g.overall.ci[0])) if scored else None


def findings(summary: dict) -> list[str]:
    """The sentences computed from the numbers, most important first."""
    groups = group_cells(summary["cells"])
    if not groups:
        return ["The study has no cells yet."]
    demos, top = headline(groups)
    wam = best([g for g in top if g.is_wam])
    ref = best([g for g in top if g.paradigm == "conv_reference"])
    base = best([g for g in top if g.paradigm == "action_only"])
    out = []
    at = f"at {demos} demos per task"
    if ref and wam:
        how = "overlap" if ref.overall.overlaps(wam.overall) else "do not overlap"
        if ref.overall.success > wam.overall.success:
            out.append(f"The outside reference {ref.variant} ({ref.overall.text()}) beats every WAM {at}: "
                       f"the best WAM, {wam.variant} ({wam.overall.text()}), is "
                       f"{ref.overall.success - wam.overall.success:.2f} lower; their 95% intervals {how}.")
        else:
            verb = "matches or beats" if how == "overlap" else "beats"
            out.append(f"The best WAM, {wam.variant} ({wam.overall.text()}), {verb} the outside reference "
                       f"{ref.variant} ({ref.overall.text()}) {at}; their 95% intervals {how}.")
    if wam and base:
        pair = (f"the best WAM, {wam.variant} ({wam.overall.text()}), and the action-only baseline, "
                f"{base.variant} ({base.overall.text()})")
        if wam.overall.overlaps(base.overall):
            out.append(f"The 95% intervals of {pair} overlap {at}: this study cannot tell them apart.")
        else:
            winner = "the best WAM is ahead" if wam.overall.success > base.overall.success else "the baseline is ahead"
            out.append(f"The 95% intervals of {pair} do not overlap {at}: {winner}.")
    elif not base:
        out.append("There is no action-only baseline in this study, so no WAM can be compared with it.")
    if mixed := _mixed_arithmetic(summary["cells"]):
        out.append(mixed)
    return out


def _mixed_arithmetic(cells: list[dict]) -> str | None:
    """A sentence when the cells trained in different precisions or on different devices (runtime.json each)."""
    runs = [c["runtime"] for c in cells if c.get("runtime")]

    def kind(r: dict) -> str:
        return f"{r.get('precision')} on {r.get('device')}"

    kinds = Counter(kind(r) for r in runs)
    changed = sum(any(kind(e) != kind(r) for e in r.get("earlier", [])) for r in runs)
    if len(kinds) < 2 and not changed:
        return None
    parts = [", ".join(f"{k} ({n} cell{'s' * (n > 1)})" for k, n in kinds.most_common())] if len(kinds) > 1 else []
    if changed:
        parts.append(f"{changed} cell{'s' * (changed > 1)} changed arithmetic when resumed (runtime.json's earlier)")
    return (f"The cells did not all train in the same arithmetic: {'; '.join(parts)}. Their steps are equal, "
            f"their numerics are not: compare cells of one kind, or train the others again on one machine (each cell's "
            f"runtime.json says why its precision was chosen).")


# extra measurements a study may ask for (summary.json cells' `extra`), shown in the headline table when present
EXTRA_COLUMNS = (("success_eval_paraphrase-1", "success, training instruction"),
                 ("offline_mse_imagined", "held-out action MSE"),
                 ("offline_mse_real", "held-out action MSE, real future"),
                 ("offline_real_minus_imagined", "real − imagined future"),
                 ("offline_mse_video_only_tasks", "held-out action MSE, video-only tasks"),
                 ("swap_action_margin", "swap margin (wrong − right instruction)"))


def _extra_text(g: Group, key: str) -> str:
    """Mean over seeds; with one seed, its 95% interval too (`<key>_ci95`)."""
    value = g.mean_of(key)
    if value is None:
        return "—"
    extra = g.cells[0].get("extra", {})  # intervals: <key>_ci95, or ci95_<name> beside success_<name>
    name = f"ci95_{key[len('success_'):]}" if key.startswith("success_") else f"{key}_ci95"
    ci = extra.get(name) if len(g.cells) == 1 else None
    if key.startswith("success"):
        return f"{value:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
    return f"{value:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")


# -- the document: a list of blocks, rendered to HTML and to Markdown --------------------------------------
def _tables(groups: list[Group], tasks: list[str]) -> list[tuple]:
    demos, top = headline(groups)
    winner = best(top)
    extra = [(k, name) for k, name in EXTRA_COLUMNS if any(g.mean_of(k) is not None for g in groups)]
    phrase = max((int(c.get("extra", {}).get("paraphrase", -1)) for g in top for c in g.cells), default=-1)
    said = f"success, held-out paraphrase {phrase} [95% CI]" if phrase >= 0 else "success [95% CI]"
    head = ["variant", "paradigm · integration", "init", "video weight", said, *(n for _, n in extra),
            "episodes", "ms / chunk", "train s", "steps", "seeds"]
    rows = [[g.variant, f"{g.paradigm} · {g.integration}", g.init, f"{g.video_weight:g}", g.overall.text(),
             *(_extra_text(g, k) for k, _ in extra), str(g.overall.n), _num(g.ms), _num(g.mean_of("train_seconds")),
             _num(g.mean_of("steps")), g.seeds_text()] for g in top]
    blocks: list[tuple] = [("h2", f"Results at {demos} demos per task"),
                           ("table", head, rows, top.index(winner) if winner else None),
                           ("h3", "Per task"),
                           ("table", ["variant", *tasks], [[g.variant, *(g.per_task.get(t, Rate(0, 0)).text()
                                                                        for t in tasks)] for g in top],
                            top.index(winner) if winner else None),
                           ("h2", "Every variant at every demo size")]
    extras = sorted({k for g in groups for c in g.cells for k, v in c.get("extra", {}).items()
                     if isinstance(v, (int, float))})
    for variant in dict.fromkeys(g.variant for g in groups):
        mine = [g for g in groups if g.variant == variant]
        blocks.append(("h3", f"{variant} ({mine[0].paradigm} · {mine[0].integration}, init {mine[0].init})"))
        blocks.append(("table", ["demos", "success [95% CI]", *tasks, "episodes", "ms / chunk", "train s", "steps",
                                 "each seed", *extras],
                       [[str(g.demos), g.overall.text(), *(g.per_task.get(t, Rate(0, 0)).text() for t in tasks),
                         str(g.overall.n), _num(g.ms), _num(g.mean_of("train_seconds")), _num(g.mean_of("steps")),
                         ", ".join(f"{s:.2f}" for s in g.seed_success()), *(_num(g.mean_of(k)) for k in extras)]
                        for g in mine], None))
    return blocks


def study_tasks(cells: list[dict]) -> list[str]:
    """The tasks of a study's cells, in order of appearance (the columns of every per-task table)."""
    return list(dict.fromkeys(t for c in cells for t in c.get("per_task", {})))


def headline_markdown(study_dir: Path) -> str:
    """A study's headline and per-task tables as Markdown (what docs/results.md quotes)."""
    summary = load_summary(study_dir)
    blocks = _tables(group_cells(summary["cells"]), study_tasks(summary["cells"]))
    cut = next(i for i, b in enumerate(blocks) if b[0] == "h2" and b[1].startswith("Every variant"))
    return "\n\n".join(md_block(b).strip() for b in blocks[:cut])


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


def _videos(study_dir: Path, top: list[Group], files: Path) -> list[tuple]:
    """Per variant, the first seed's saved episodes at the headline demo size: real | imagined, and real."""
    blocks = []
    for g in top:
        cell = g.cells[0]
        evald = study_dir / cell["run"] / "eval"
        info = json.loads((evald / "eval_info.json").read_text()) if (evald / "eval_info.json").is_file() else {}
        items = []
        for i in sorted({int(m.group(1)) for p in evald.glob("*_episode_*.mp4")
                         if (m := re.search(r"_episode_(\d+)\.mp4$", p.name))})[:VIDEOS_PER_VARIANT]:
            for kind, what in (("pred", "real | imagined"), ("eval", "real")):
                src = evald / f"{kind}_episode_{i}.mp4"
                if src.is_file():
                    dest = files / f"{Path(cell['run']).name}__{src.name}"
                    shutil.copyfile(src, dest)
                    items.append((f"{files.name}/{dest.name}", f"{what}: {_episode_caption(info, i)}"))
        if items:
            blocks.append(("h3", f"{g.variant} (seed {cell.get('seed', '?')}, {g.demos} demos)"))
            blocks.append(("videos", items))
    if not blocks:
        return [("p", "No episode videos were saved by the cells' evaluations.")]
    return [("h2", "Imagined vs real futures"),
            ("p", "Left of the white bar: what the camera saw; right: the frame the policy imagined for that step "
                  "(held until its next plan). Policies that do not imagine only have the real episode."), *blocks]


def _episode_caption(info: dict, i: int) -> str:
    """'episode i: task, seed s, success/failure' from eval_info.json (episode i = i-th job of the run)."""
    tasks, per = list(info.get("per_task", {})), info.get("config", {}).get("episodes")
    if not tasks or not per or i // per >= len(tasks):
        return f"episode {i}"
    task, seed = tasks[i // per], info["config"].get("seed", 0) + i % per
    ok = [e["success"] for e in info.get("episodes", []) if e.get("task") == task and e.get("seed") == seed]
    verdict = "" if not ok else ", success" if ok[0] else ", failure"
    return f"episode {i}: {task}, seed {seed}{verdict}"


def data_seen(data: dict) -> str:
    """Who saw what (summary.json's `data`): the labelled demos per demo size, the world model's video."""
    lab, vid = data["labelled"], data["video"]
    sizes = ", ".join(f"{d} a task = {v['episodes']} episodes" for d, v in lab["per_demos"].items())
    pool = f"{vid['episodes']} episodes of {len(vid['episodes_per_task'])} tasks" if "episodes" in vid else "?"
    arms = "; ".join(f"{k}: {v}" for k, v in data["arms"].items())
    text = (f"labelled demos from {lab['path']} ({', '.join(lab['tasks'])}; {sizes}); the world model pretrained on "
            f"{vid['path']} ({pool}, {'with' if vid['reads_actions'] else 'without'} actions). {arms}.")
    return "<b>Data:</b> " + html.escape(text)


def _provenance(study_dir: Path, summary: dict) -> str:
    date = summary.get("date") or datetime.datetime.fromtimestamp(
        (study_dir / "summary.json").stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    commit = summary.get("commit")
    if not commit:
        try:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                                    capture_output=True, text=True, timeout=10).stdout.strip() + " (of the report code)"
        except (OSError, subprocess.SubprocessError):
            commit = "unknown"
    return f"{date} · commit {commit or 'unknown'} · {len(summary['cells'])} cells"


def build(study_dir: Path, files: Path) -> tuple[str, list[tuple]]:
    """The report's title and blocks; writes the PNGs and video copies into `files`."""
    summary = load_summary(study_dir)
    groups = group_cells(summary["cells"])
    title = f"Study: {summary.get('study', study_dir.name)}"
    if not groups:
        return title, [("p", "The study has no cells yet.")]
    tasks = study_tasks(summary["cells"])
    styles = variant_styles(groups)
    demos, top = headline(groups)
    tables = _tables(groups, tasks)
    plot_success_vs_demos(groups, tasks, styles, files / "success_vs_demos.png")
    plot_success_vs_latency(top, styles, files / "success_vs_latency.png")
    plot_training_curves(study_dir, groups, styles, files / "training_curves.png")
    note = ("Success is pooled over seeds, with a 95% Wilson interval over the pooled episodes (it does not "
            "include seed-to-seed variation: each seed's own success is drawn faintly in the plots). "
            "The highlighted row is the best variant.")
    return title, [
        ("p", f"<b>Question:</b> {html.escape(summary.get('question', '(not stated)'))}"),
        ("meta", _provenance(study_dir, summary)),
        *([("p", data_seen(summary["data"]))] if summary.get("data") else []),
        ("findings", findings(summary)),
        ("img", f"{files.name}/success_vs_demos.png", "success vs demos per task, one line per variant"),
        *tables[:4],
        ("note", note),
        ("img", f"{files.name}/success_vs_latency.png", f"success vs ms per action chunk at {demos} demos"),
        *_videos(study_dir, top, files),
        ("h2", "Training curves"),
        ("img", f"{files.name}/training_curves.png", "train and validation loss vs step, every cell"),
        *tables[4:],
    ]


def write_report(study_dir: Path) -> tuple[Path, Path]:
    """Write `report.html` and `report.md` (+ `report_files/`) into `study_dir`; returns their paths."""
    study_dir = Path(study_dir)
    files = study_dir / "report_files"
    files.mkdir(parents=True, exist_ok=True)
    for old in files.glob("*.mp4"):  # videos of an earlier headline (e.g. before more demos were added)
        old.unlink()
    html_page, md_page = render(*build(study_dir, files))
    html_path, md_path = study_dir / "report.html", study_dir / "report.md"
    html_path.write_text(html_page)
    md_path.write_text(md_page)
    return html_path, md_path
