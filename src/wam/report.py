"""A minimal study report: a table of summary.json's cells as `report.md` and `report.html`.

A placeholder written with `wam study` so that a study runs end to end on its own; the full report
(plots, pooled seeds, videos, conclusions) replaces this module when its branch is merged.

    write_report(Path("runs/studies/x"))   # -> (report.html, report.md)
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from wam.errors import WamError


def markdown(summary: dict) -> str:
    lines = [f"# {summary['study']}", "", summary.get("question", ""), "",
             "| variant | paradigm | init | video weight | demos | seed | success | 95% CI | episodes | ms/chunk | steps |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in summary["cells"]:
        ms = f"{c['ms_per_chunk']:.0f}" if c.get("ms_per_chunk") is not None else "-"
        lines.append(f"| {c['variant']} | {c['paradigm']} ({c['integration']}) | {c['init']} | {c['video_weight']:g} | "
                     f"{c['demos']} | {c['seed']} | {c['success']:.2f} | [{c['ci95'][0]:.2f}, {c['ci95'][1]:.2f}] | "
                     f"{c['episodes']} | {ms} | {c['steps']} |")
    lines += ["", f"{len(summary['cells'])} of {summary.get('planned_cells', len(summary['cells']))} cells finished."]
    return "\n".join(lines) + "\n"


def write_report(study_dir: Path) -> tuple[Path, Path]:
    """Write report.md and report.html beside the study's summary.json."""
    study_dir = Path(study_dir)
    path = study_dir / "summary.json"
    if not path.exists():
        raise WamError(f"no summary.json in {study_dir}: run `wam study` first")
    text = markdown(json.loads(path.read_text()))
    md, page = study_dir / "report.md", study_dir / "report.html"
    md.write_text(text)
    page.write_text(f"<!doctype html><meta charset='utf-8'><pre>{html.escape(text)}</pre>\n")
    return page, md
