"""Which inverse-dynamics settings label the action-free episodes best? (issue 12, nineteenth session)

`wam.action_labels.infer_actions` as `wam train --data.actionless_actions=inverse_dynamics` calls it, over the cached
pixels-only detector positions of label_quality.py (`idm_labels/xyz_d5_s0.npz`: hand, object, goal, fitted on the
5 labelled demos a task), for several `labels.ahead` / `labels.behind` / `labels.ensemble` and two MLP seeds; two of
them also without the clipping to the labelled demos' action range. Scored against the other training episodes'
recorded actions (never trained on): R^2 per action dimension pooled and per task, and the mean squared error.
Run from /work/scratch after label_quality.py:
    OMP_NUM_THREADS=1 python docs/runs/idm_labels/label_config.py --data data/mw5_c2c_128 \
        --cache idm_labels/xyz_d5_s0.npz
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from wam.action_labels import LabelConfig, _rows, features, fit_mlp, infer_actions, r2
from wam.data.frames import episode_starts
from wam.data.lerobot_format import LeRobotDataset
from wam.pretrain import split_episodes

SETTINGS = [(8, 0, 1), (8, 2, 1), (8, 4, 1), (8, 8, 1), (12, 4, 1), (8, 4, 3)]  # (ahead, behind, ensemble); (8, 0, 1)
# is the eighteenth session's
UNCLIPPED = [(8, 0), (8, 4)]  # also scored without clipping to the demos' action range (the eighteenth session's)


def unclipped(ds: LeRobotDataset, xyz: np.ndarray, labelled: list[int], video: list[int], seed: int,
              cfg: LabelConfig) -> np.ndarray:
    """The labels `infer_actions` gives `video`'s frames (n, Da), before they are clipped."""
    actions = ds.read_columns(["action"])["action"]
    rows, around = _rows(ds, labelled, cfg.ahead, cfg.behind)
    fit = fit_mlp(features(xyz, 0, rows, around), actions[rows], seed, cfg.steps, cfg.width, cfg.batch_size)
    rows, around = _rows(ds, video, cfg.ahead, cfg.behind)
    return fit(features(xyz, 0, rows, around))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/mw5_c2c_128")
    ap.add_argument("--cache", default="idm_labels/xyz_d5_s0.npz")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--out", default="docs/runs/idm_labels/label_config.json")
    args = ap.parse_args()
    ds = LeRobotDataset(args.data)
    xyz = np.load(args.cache)["xyz"]  # (N, 3, 3)
    labelled, held = split_episodes(ds, 0.1, 5, "mw5")
    every, _ = split_episodes(ds, 0.1, 0, "mw5")
    video = sorted(set(every) - set(labelled))
    cols = ds.read_columns(["action", "task_index"])
    starts = episode_starts(ds)
    rows = np.concatenate([np.arange(starts[e], starts[e + 1]) for e in video])
    true, task = cols["action"][rows], cols["task_index"].reshape(-1)[rows]

    def score(pred: np.ndarray) -> dict:  # against the recorded actions, pooled and per task
        return {"mse": round(float(((pred - true) ** 2).mean()), 5), "recorded_r2": r2(pred, true),
                "r2_by_task": {ds.tasks[t]: r2(pred[task == t], true[task == t]) for t in np.unique(task)}}

    result = []
    for ahead, behind, ensemble in SETTINGS:
        for seed in map(int, args.seeds.split(",")):
            cfg = LabelConfig(ahead=ahead, behind=behind, ensemble=ensemble)
            labels, report = infer_actions(ds, xyz, ["hand", "object", "goal"], labelled, video, held, seed, cfg)
            pred = np.concatenate([labels[e] for e in video])
            rows_of = [{"ahead": ahead, "behind": behind, "ensemble": ensemble, "seed": seed, **score(pred),
                        "held_out_r2": report["held_out_r2"]}]
            if (ahead, behind) in UNCLIPPED and ensemble == 1:
                raw = unclipped(ds, xyz, labelled, video, seed, cfg)
                rows_of.append({"ahead": ahead, "behind": behind, "seed": seed, "clipped": False, **score(raw)})
            for row in rows_of:
                result.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "r2_by_task"}), flush=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
