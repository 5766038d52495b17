"""The study report's figures (matplotlib, Agg, PNG): what a person looks at before reading a table.

- `plot_success_vs_demos`: one panel per task (and all tasks pooled), one line per variant through its
  seeds-pooled success with 95% Wilson error bars, each seed's own point shown faintly;
- `plot_success_vs_latency`: success against milliseconds per action chunk (log x), one point per variant;
- `plot_training_curves`: train and validation loss against step for every cell, one row per demo size.

Colours and line styles are fixed per variant (`variant_styles`) so a variant looks the same in every figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wam.runs.train_log import log_series, read_log

if TYPE_CHECKING:
    from wam.report import Group

Style = dict  # matplotlib keyword arguments: color, linestyle, marker


def variant_styles(groups: Sequence[Group]) -> dict[str, Style]:
    """A colour per variant (tab10 in order of appearance); the outside reference black, dashed, the
    action-only baseline grey, dotted."""
    import matplotlib

    palette = matplotlib.colormaps["tab10"].colors
    styles: dict[str, Style] = {}
    for g in groups:
        if g.variant in styles:
            continue
        if g.paradigm == "conv_reference":
            styles[g.variant] = {"color": "black", "linestyle": "--", "marker": "s"}
        elif g.paradigm == "action_only":
            styles[g.variant] = {"color": "0.45", "linestyle": ":", "marker": "D"}
        else:
            k = sum(s["color"] not in ("black", "0.45") for s in styles.values())
            styles[g.variant] = {"color": palette[k % len(palette)], "linestyle": "-", "marker": "o"}
    return styles


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain_ticks(axis) -> None:
    """Tick labels as plain numbers ('4', '0.3') on a log axis instead of '4x10^0'."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))


def _errorbar(ax, x: float, rate, style: Style, label: str | None = None) -> None:
    lo, hi = rate.ci
    ax.errorbar([x], [rate.success], yerr=[[rate.success - lo], [hi - rate.success]], capsize=3,
                color=style["color"], marker=style["marker"], ms=5, linestyle="none", label=label)


def plot_success_vs_demos(groups: Sequence[Group], tasks: Sequence[str], styles: dict[str, Style],
                          out: Path) -> Path:
    """Success (pooled over seeds, with CI) vs demos per task, one line per variant; seeds faint."""
    plt = _pyplot()
    panels = ["all tasks", *tasks]
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    variants = list(styles)
    for ax, panel in zip(axes.flat, panels):
        for k, variant in enumerate(variants):
            mine = sorted((g for g in groups if g.variant == variant), key=lambda g: g.demos)
            shift = 2 ** (0.05 * (k - (len(variants) - 1) / 2))  # side by side on the log axis
            xs, ys = [], []
            for g in mine:
                rate = g.overall if panel == "all tasks" else g.per_task.get(panel)
                if rate is None or rate.success is None:
                    continue
                xs.append(g.demos * shift)
                ys.append(rate.success)
                _errorbar(ax, xs[-1], rate, styles[variant])
                seeds = g.seed_success(None if panel == "all tasks" else panel)
                ax.scatter([xs[-1]] * len(seeds), seeds, color=styles[variant]["color"], alpha=0.25, s=14,
                           linewidths=0)
            ax.plot(xs, ys, color=styles[variant]["color"], linestyle=styles[variant]["linestyle"],
                    label=variant if panel == "all tasks" else None)
        demos = sorted({g.demos for g in groups})
        ax.set_xscale("log", base=2)
        ax.set_xticks(demos, [str(d) for d in demos])
        ax.minorticks_off()
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("demos per task")
        ax.set_ylabel("success")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.legend(loc="lower center", ncol=min(len(variants), 4), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.1 / rows + 0.02, 1, 1))
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_success_vs_latency(groups: Sequence[Group], styles: dict[str, Style], out: Path) -> Path:
    """Success (with CI) against ms per action chunk, log x, one labelled point per variant."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for g in groups:
        if g.ms is None or g.overall.success is None:
            continue
        _errorbar(ax, g.ms, g.overall, styles[g.variant], label=g.variant)
        ax.annotate(g.variant, (g.ms, g.overall.success), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xscale("log")
    ms = [g.ms for g in groups if g.ms is not None and g.overall.success is not None]
    if ms:  # at least a factor 4 wide, so labelled ticks show even when every variant costs the same
        centre, half = (min(ms) * max(ms)) ** 0.5, max(2.0, (max(ms) / min(ms)) ** 0.5 * 1.3)
        ax.set_xlim(centre / half, centre * half)
    _plain_ticks(ax.xaxis)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("ms per action chunk (log scale)")
    ax.set_ylabel("success")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def loss_series(path: Path) -> dict[str, list[tuple[int, float]]]:
    """`loss` and `val_loss` series of a trainer log.csv as (step, value) lists (empty when absent)."""
    rows = read_log(path)
    return {key: log_series(rows, key) for key in ("loss", "val_loss")}


def plot_training_curves(study_dir: Path, groups: Sequence[Group], styles: dict[str, Style], out: Path) -> Path:
    """Train loss (left) and validation loss (right) vs step for every cell; a row per demo size."""
    plt = _pyplot()
    demos = sorted({g.demos for g in groups})
    fig, axes = plt.subplots(len(demos), 2, figsize=(11, 3 * len(demos)), squeeze=False)
    for (ax_train, ax_val), d in zip(axes, demos):
        for g in (g for g in groups if g.demos == d):
            for n, cell in enumerate(g.cells):
                log = loss_series(study_dir / cell["run"] / "log.csv")
                label = g.variant if n == 0 else None
                for ax, key, marker in ((ax_train, "loss", None), (ax_val, "val_loss", "o")):
                    if log[key]:
                        ax.plot(*zip(*log[key]), color=styles[g.variant]["color"], alpha=0.75, lw=1,
                                linestyle=styles[g.variant]["linestyle"], marker=marker, ms=3, label=label)
        for ax, name in ((ax_train, "train loss"), (ax_val, "validation loss (EMA weights)")):
            ax.set_title(f"{name}, {d} demos per task", fontsize=10)
            ax.set_xlabel("step")
            if ax.lines and all(min(line.get_ydata()) > 0 for line in ax.lines):
                ax.set_yscale("log")
                _plain_ticks(ax.yaxis)
            ax.grid(alpha=0.3)
        if ax_train.lines:
            ax_train.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
