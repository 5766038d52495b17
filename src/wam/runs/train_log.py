"""A run's log.csv (one row per logged step, rows past a resumed step dropped) and curves.png beside it; and
setup_cost.json, the time its fits before the first step took.

    log = CsvLog(run / "log.csv", resume_step=0); log.add({"step": 1, "loss": 0.5}); log.flush()
    read_log(run / "log.csv")  # [{"step": "1", "loss": "0.5"}]
    cost = SetupCost(run / "setup_cost.json"); found = cost("keypoint_fit", fit, *args)
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from wam.data.files import write_json_atomic

T = TypeVar("T")


class SetupCost:
    """Wall and process-CPU seconds of the fits a run makes before its first optimizer step (the keypoint detector,
    the inverse-dynamics labeller), written to `path` (None: kept, not written). A study's equal budget counts
    optimizer steps; these fits come on top of it, so they are recorded beside it (summary.json `setup_seconds`).
    A resumed run fits again and records that fit's time."""

    def __init__(self, path: Path | None):
        self.path, self.parts = path, {}

    def __call__(self, name: str, fit: Callable[..., T], *args) -> T:
        wall, cpu = time.perf_counter(), time.process_time()
        result = fit(*args)
        self.parts[name] = {"wall_s": round(time.perf_counter() - wall, 3), "cpu_s": round(time.process_time() - cpu, 3)}
        if self.path is not None:
            write_json_atomic(self.parts, self.path)
        return result


def setup_seconds(run: Path) -> float | None:
    """The wall seconds of a run's setup_cost.json, summed (None for a run that has none: older than it)."""
    path = run / "setup_cost.json"
    return sum(p["wall_s"] for p in json.loads(path.read_text()).values()) if path.exists() else None


class CsvLog:
    """log.csv of a run; rows past a resumed step are dropped so curves never double back.
    With `write=False` (ranks other than 0) it keeps its rows and writes nothing."""

    def __init__(self, path: Path, resume_step: int, write: bool = True):
        self.path, self.write = path, write
        self.rows: list[dict] = []
        if not write:
            return
        if path.exists() and resume_step > 0:
            with path.open() as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self._write()

    def add(self, row: dict) -> None:
        self.rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})

    def _write(self) -> None:
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys or ["step"])
            writer.writeheader()
            writer.writerows(self.rows)

    def flush(self) -> None:
        if not self.write:
            return
        self._write()
        plot_log(self.path)


def read_log(path: Path) -> list[dict]:
    """The rows of a run's log.csv as dicts of strings (empty when there is none yet)."""
    if not path.is_file():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def log_series(rows: list[dict], key: str) -> list[tuple[int, float]]:
    """(step, value) of one column, over the rows that have it (validation loss is logged sparsely)."""
    return [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]


def plot_log(path: Path) -> None:
    """curves.png beside log.csv: training and validation loss (log scale) and learning rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_log(path)
    if not rows:
        return
    series = lambda key: log_series(rows, key)  # noqa: E731
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    for key in ("loss", "val_loss", "val_action_loss"):  # a WAM's val_loss sums action and video terms
        if series(key) and (key != "val_action_loss" or series(key) != series("val_loss")):
            a.plot(*zip(*series(key)), label=key, marker="o" if key.startswith("val") else None, ms=3)
    a.set_yscale("log"), a.set_xlabel("step"), a.legend(), a.grid(alpha=0.3)
    if series("lr"):
        b.plot(*zip(*series("lr")))
    b.set_xlabel("step"), b.set_ylabel("learning rate"), b.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path.with_name("curves.png"))
    plt.close(fig)
