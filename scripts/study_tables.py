"""Keep a finished study's results in the repo and print its headline tables for docs/results.md.

    .venv/bin/python scripts/study_tables.py runs/studies/future_helps_acting [...] [--out docs/runs/studies]

Copies each study's report.md, summary.json, study.yaml, rates.json and plots (report_files/*.png;
the videos stay in the run folder) into <out>/<study name>/, and prints the report's headline and
per-task tables (the same code as `wam report`), so results.md shows what the report shows.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from wam.report import headline_markdown

KEEP = ("report.md", "summary.json", "study.yaml", "rates.json")


def keep(study: Path, out: Path) -> Path:
    dest = out / study.name
    (dest / "report_files").mkdir(parents=True, exist_ok=True)
    for name in KEEP:
        if (study / name).exists():
            shutil.copyfile(study / name, dest / name)
    for png in (study / "report_files").glob("*.png"):
        shutil.copyfile(png, dest / "report_files" / png.name)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("studies", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs/runs/studies"))
    args = ap.parse_args()
    for study in args.studies:
        print(f"<!-- {keep(study, args.out)} -->\n{headline_markdown(study)}\n")


if __name__ == "__main__":
    main()
