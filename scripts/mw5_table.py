"""The issue-4 comparison table from runs/mw5/*/eval/eval_info.json (scripts/mw5_comparison.sh).

    .venv/bin/python scripts/mw5_table.py [--runs runs/mw5] [--out docs/runs/mw5]

Writes <out>/table.md and copies each run's config.yaml, curves.png, eval_info.json (episodes
trimmed to task/seed/success/length) and the first eval/pred videos into <out>/<variant>/.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from wam.runs.train_log import read_log

ORDER = ["action_only", "representation", "joint", "inverse_dynamics", "hierarchical", "joint_no_video", "joint_scratch",
         "conv_reference"]


def train_seconds(log: Path) -> tuple[int, float]:
    """(last step, seconds) from the trainer's log.csv (10 steps a row at the logged samples/s)."""
    rows = read_log(log)
    steps = int(rows[-1]["step"])
    batch = 32
    prev, seconds = 0, 0.0
    for r in rows:
        step = int(r["step"])
        seconds += (step - prev) * batch / float(r["samples_per_s"])
        prev = step
    return steps, seconds


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", default="runs/mw5")
    p.add_argument("--out", default="docs/runs/mw5")
    args = p.parse_args()
    runs, out = Path(args.runs), Path(args.out)
    names = sorted((d.name for d in runs.iterdir() if (d / "eval/eval_info.json").exists()),
                   key=lambda n: ORDER.index(n) if n in ORDER else 99)
    infos = {n: json.loads((runs / n / "eval/eval_info.json").read_text()) for n in names}
    tasks = list(next(iter(infos.values()))["per_task"])
    head = ["variant", "train steps", "train wall min (shared CPU)"] + [t.removesuffix("-v3") for t in tasks] + \
           ["overall (95% CI)", "ms / chunk", "control steps/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in names:
        info, (steps, secs) = infos[n], train_seconds(runs / n / "log.csv")
        o = info["overall"]
        cells = [n, str(steps), f"{secs / 60:.1f}"]
        cells += [f"{info['per_task'][t]['successes']}/{info['per_task'][t]['episodes']}" for t in tasks]
        cells += [f"**{o['success']:.2f}** [{o['ci95'][0]:.2f}, {o['ci95'][1]:.2f}]", f"{o['ms_per_chunk']:.0f}",
                  f"{o['control_hz']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
        dst = out / n
        dst.mkdir(parents=True, exist_ok=True)
        for f in ("config.yaml", "curves.png", "log.csv"):
            shutil.copy(runs / n / f, dst / f)
        trimmed = {**info, "episodes": [{k: e.get(k) for k in ("task", "seed", "success", "length", "error")}
                                        for e in info["episodes"]]}
        (dst / "eval_info.json").write_text(json.dumps(trimmed, indent=1))
        for video in sorted((runs / n / "eval").glob("*_episode_0.mp4")):
            shutil.copy(video, dst / video.name)
    table = "\n".join(lines)
    (out / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
