"""Can an inverse-dynamics model trained on the few labelled demos label the other episodes' video? (issue 12)

The 5-demo target asks the WAM to use action-free video where action-only cannot. One way the field does it (VPT,
UniPi's inverse dynamics; LAPA with latent codes) is to infer the actions of action-free video and train on them.
This measures, offline, whether that could pay here before any of it is built into the library: on mw5 with two
cameras, every model below is fitted on the 5 labelled demos a task and scored on the *other* training episodes of
each task (the ones a study would treat as action-free video), whose recorded actions only score it.

- perception (pixels only): the library's keypoint detector (`wam.nn.keypoints`, two cameras, targets hand, object,
  goal, lifted to the world by the pooled map) fitted on the labelled demos' frames;
- `bc`: action_t from what a policy sees now (proprio_t + the detected xyz at t);
- `idm`: the same + the detected hand's displacement over the next 1..8 frames (the video's future);
- `idm_true`: the same with the recorded hand displacement (the ceiling of reading the hand from pixels).

Then what the labels are worth to a policy, offline: `bc` refitted on the labelled demos + the other episodes
labelled by `idm` (`bc_on_idm_labels`), or by their recorded actions (`bc_on_true_labels`, the ceiling), scored
on the held-out episodes against `bc` on the labelled demos alone.

Each is the same small MLP (`wam.action_labels.fit_mlp`, which `data.actionless_actions=inverse_dynamics` fits). R^2 per action dimension, pooled over tasks. Run from /work/scratch:
    OMP_NUM_THREADS=1 python docs/runs/idm_labels/label_quality.py --data data/mw5_c2c_128 --out idm_labels
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from wam.data.frames import cached_frames, episode_starts
from wam.action_labels import fit_mlp, r2
from wam.data.lerobot_format import LeRobotDataset
from wam.nn.keypoints import KeypointConfig, KeypointNet, fit_lift, train_keypoints
from wam.paradigms.keypoints import _rows, as_state, detector_inputs, locate_all, world_positions
from wam.pretrain import split_episodes

AHEAD = 8  # future frames the inverse-dynamics features read


def detect(ds: LeRobotDataset, labelled: list[int], steps: int, seed: int, cache: Path) -> np.ndarray:
    """(N, 3, 3) detected world xyz of hand, object, goal for every frame (pixels only; fitted on `labelled`)."""
    if cache.exists():
        return np.load(cache)["xyz"]
    cfg = KeypointConfig(targets="hand,object,goal", views="corner", world=True, steps=steps)
    net = KeypointNet(cfg, 64)
    key = ds.video_keys[0]
    frames = cached_frames(ds, key, image_size=64).frames
    stacked, centres = detector_inputs(cfg, ds, frames, key, 64)
    rows = _rows(ds, labelled)
    t0 = time.time()
    fit = train_keypoints(net, stacked, centres, rows, seed=seed)
    print(f"detector: {fit['median_px_error']:.2f} px on labelled frames, {time.time() - t0:.0f} s")
    found = locate_all(net, stacked)
    world, mean, std = world_positions(ds, cfg.names(), labelled)
    seen = np.where(np.isfinite(centres[rows]), found[rows], np.nan)
    fit_lift(net, seen, (world[rows] - mean) / std)
    xyz = as_state(net, found) * std + mean  # (N, 3, 3)
    np.savez(cache, xyz=xyz)
    return xyz


def features(ds: LeRobotDataset, xyz: np.ndarray, episodes: list[int]) -> dict[str, np.ndarray]:
    """Per frame with AHEAD frames after it in its episode: the three feature sets, the action, the task."""
    cols = ds.read_columns(["observation.state", "observation.environment_state", "action", "task_index"])
    starts = episode_starts(ds)
    rows = np.concatenate([np.arange(starts[e], starts[e + 1] - AHEAD) for e in episodes])
    ahead = rows[:, None] + np.arange(1, AHEAD + 1)  # (n, AHEAD)
    now = np.concatenate([cols["observation.state"][rows], xyz[rows].reshape(len(rows), -1)], 1)
    hand_true = cols["observation.environment_state"][:, :3]
    return {"bc": now,
            "idm": np.concatenate([now, (xyz[ahead, 0] - xyz[rows, None, 0]).reshape(len(rows), -1)], 1),
            "idm_true": np.concatenate([now, (hand_true[ahead] - hand_true[rows, None]).reshape(len(rows), -1)], 1),
            "action": cols["action"][rows], "task": cols["task_index"].reshape(-1)[rows]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="data/mw5_c2c_128")
    ap.add_argument("--demos", type=int, default=5)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="idm_labels")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(exist_ok=True)
    ds = LeRobotDataset(args.data)
    labelled, held = split_episodes(ds, 0.1, args.demos, "mw5")
    every, _ = split_episodes(ds, 0.1, 0, "mw5")
    video = sorted(set(every) - set(labelled))  # the episodes a study would treat as action-free video
    xyz = detect(ds, labelled, args.steps, args.seed, out / f"xyz_d{args.demos}_s{args.seed}.npz")
    train, test = features(ds, xyz, labelled), features(ds, xyz, video)
    tasks = list(ds.tasks)
    result = {"demos": args.demos, "seed": args.seed, "labelled_frames": len(train["action"]),
              "video_episodes": len(video), "video_frames": len(test["action"]), "r2": {}, "r2_by_task": {}}
    for name in ("bc", "idm", "idm_true"):
        pred = fit_mlp(train[name], train["action"], args.seed)(test[name])
        result["r2"][name] = r2(pred, test["action"])
        result["r2_by_task"][name] = {tasks[t]: r2(pred[test["task"] == t], test["action"][test["task"] == t])
                                      for t in np.unique(test["task"])}
        print(f"{name:9s} R^2 (x, y, z, gripper) on the other episodes: {result['r2'][name]}")
    labels = fit_mlp(train["idm"], train["action"], args.seed)(test["idm"])  # the other episodes' inferred actions
    scored = features(ds, xyz, held)
    for name, extra in (("bc", None), ("bc_on_idm_labels", labels), ("bc_on_true_labels", test["action"])):
        x = train["bc"] if extra is None else np.concatenate([train["bc"], test["bc"]])
        y = train["action"] if extra is None else np.concatenate([train["action"], extra])
        result.setdefault("held_out_r2", {})[name] = r2(fit_mlp(x, y, args.seed)(scored["bc"]), scored["action"])
        print(f"{name:18s} R^2 (x, y, z, gripper) on held-out episodes: {result['held_out_r2'][name]}")
    (out / f"label_quality_d{args.demos}_s{args.seed}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
