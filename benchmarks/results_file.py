"""Shared by the benchmarks: the header of a result block and appending it to results/<name>.md."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


ISA_ENV = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")  # recorded in the command when set


def header(script: str) -> list[str]:
    """Date, commit and the exact command, so every block says how it was produced."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    commit = commit or os.environ.get("WAM_COMMIT", "")  # a copied tree without .git (a lent GPU machine)
    env = " ".join(f"{k}={os.environ[k]}" for k in ISA_ENV if os.environ.get(k))  # an emulated older CPU
    command = f"{env + ' ' if env else ''}.venv/bin/python benchmarks/{script} {' '.join(sys.argv[1:])}".rstrip()
    return [f"\n## {time.strftime('%Y-%m-%d %H:%M')} commit {commit}", f"command: `{command}`"]


def append(name: str, title: str, lines: list[str]) -> None:
    """Print the block and append it to benchmarks/results/<name>.md (created with `title`)."""
    text = "\n".join(lines)
    print(text)
    out = RESULTS / f"{name}.md"
    if not out.exists():
        out.write_text(f"# {title}\n")
    with out.open("a") as f:
        f.write(text + "\n")
