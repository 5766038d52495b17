"""The episodes a policy trains on without recorded actions, and the actions inverse dynamics infers for them.

    hidden_tasks, hidden = video_only(cfg, ds)              # data.video_only_tasks: whole tasks from video alone
    extra = actionless_extras(cfg, ds, train_eps)           # data.actionless_per_task: more episodes a task
    labels, report = infer_actions(ds, found, names, labelled, hidden, val_eps, seed, cfg.labels)  # {ep: (T, Da)}

By default (`data.actionless_actions=hidden`) those episodes keep their frames and states and their actions are
masked out of every action loss: they feed the video loss and `policy.aux` only. With
`data.actionless_actions=inverse_dynamics` they get actions inferred from their video, as VPT and UniPi label
action-free video: an inverse-dynamics model fitted on the labelled demos reads what the policy's keypoint detector
(`policy.keypoints`, fitted on the labelled demos only) finds in the pixels: every target's position at frame t and
the hand's displacement to each of the next `labels.ahead` frames (the video's future; past the episode's end its
last frame repeats) and from each of the previous `labels.behind` (before its start its first frame repeats). It
reads no proprio state, no recorded position and no recorded action of the episodes it labels; what it infers is
clipped to the range of the demos' actions. The policy then trains on those episodes' windows like on the demos'.
Its R^2 on the held-out episodes (their recorded actions score it) is printed and saved in the run folder
(`action_labels.json`), with, where the dataset recorded them, the R^2 against the labelled episodes' own actions
(scored, never trained on). Measured on mw5 (docs/runs/idm_labels, docs/policies.md); closed loop in
docs/results.md section 5, "Actions inferred from the video".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from wam.data.frames import episode_starts, frame_rows
from wam.data.lerobot_format import LeRobotDataset
from wam.data.tasks import resolve_tasks
from wam.data.windows import ACTION_KEY
from wam.errors import ConfigError
from wam.pretrain import split_episodes

if TYPE_CHECKING:
    from wam.train import TrainConfig

ACTIONLESS = ("hidden", "inverse_dynamics")  # data.actionless_actions


@dataclass
class LabelConfig:
    """`labels`: the inverse-dynamics model of `data.actionless_actions=inverse_dynamics` (unused otherwise)."""

    ahead: int = 8  # it reads the hand's displacement to each of the next N frames (the video's future)
    behind: int = 4  # and from each of the previous N frames (0 = none): the detected track's noise averages out
    steps: int = 3000  # its MLP's training steps
    width: int = 256  # the MLP's hidden width (two layers)
    batch_size: int = 256
    ensemble: int = 1  # average N such MLPs (seeds seed, seed + 1000, ...): N times the ~30 CPU-s fit

    def check(self) -> None:
        for name in ("ahead", "steps", "width", "batch_size", "ensemble"):
            if getattr(self, name) < 1:
                raise ConfigError(f"labels.{name} must be >= 1, got {getattr(self, name)}")
        if self.behind < 0:
            raise ConfigError(f"labels.behind must be >= 0 (0 = no past frames), got {self.behind}")


def trained_tasks(ds: LeRobotDataset, only: str = "") -> list[str]:
    """The Meta-World task names of a dataset's episodes (empty for data without that field), those of
    `only` (names or a suite, `data.tasks`) when given."""
    present = sorted({e.extras["env_task"] for e in ds.episodes if e.extras.get("env_task")})
    return [t for t in present if t in set(resolve_tasks(only))] if only else present


def video_only(cfg: TrainConfig, ds: LeRobotDataset) -> tuple[list[str], list[int]]:
    """The tasks of `data.video_only_tasks` and their episodes (whose actions are not read in training)."""
    if not cfg.data.video_only_tasks:
        return [], []
    tasks, present = resolve_tasks(cfg.data.video_only_tasks), trained_tasks(ds, cfg.data.tasks)
    missing = [t for t in tasks if t not in present]
    if missing:
        raise ConfigError(f"data.video_only_tasks names {', '.join(missing)}, which {cfg.data.path} does not hold "
                          f"(its tasks: {', '.join(present) or 'none recorded'})")
    if set(present) <= set(tasks):
        raise ConfigError("data.video_only_tasks covers every task of the dataset: no actions are left to learn from")
    return tasks, [e.index for e in ds.episodes if e.extras.get("env_task") in tasks]


def actionless_extras(cfg: TrainConfig, ds: LeRobotDataset, train_eps: list[int]) -> list[int]:
    """The `data.actionless_per_task` training episodes of each task after its labelled demos (never
    held-out ones): they train without their recorded actions."""
    want = cfg.data.actionless_per_task
    if not want:
        return []
    every, _ = split_episodes(ds, cfg.data.val_fraction, 0, cfg.data.tasks)
    labelled = set(train_eps)
    rest: dict[str, list[int]] = {ds.episodes[e].tasks[0]: [] for e in every}
    for e in every:
        if e not in labelled:
            rest[ds.episodes[e].tasks[0]].append(e)
    short = [f"{task!r} ({len(eps)})" for task, eps in rest.items() if len(eps) < max(want, 1)]
    if short:
        raise ConfigError(f"data.actionless_per_task={want}, but past its {cfg.data.episodes_per_task} labelled demos "
                          f"{cfg.data.path} has fewer training episodes for {', '.join(short)}")
    return sorted(e for eps in rest.values() for e in (eps if want < 0 else eps[:want]))


def check_labels(cfg: TrainConfig) -> None:
    """`data.actionless_actions`: a known value; inverse dynamics needs episodes to label and the detected hand, and
    `labels.*` needs inverse dynamics."""
    how = cfg.data.actionless_actions
    if how not in ACTIONLESS:
        raise ConfigError(f"data.actionless_actions must be one of {', '.join(ACTIONLESS)}, got {how!r}")
    if how == "hidden":
        if cfg.labels != LabelConfig():
            raise ConfigError("labels.* set the inverse dynamics of data.actionless_actions=inverse_dynamics; with "
                              "data.actionless_actions=hidden nothing reads them: drop them or set that")
        return
    if not (cfg.data.actionless_per_task or cfg.data.video_only_tasks):
        raise ConfigError("data.actionless_actions=inverse_dynamics labels the episodes of data.actionless_per_task "
                          "or data.video_only_tasks; neither is set, so it would label nothing")
    if cfg.data.labelled_share:
        raise ConfigError("data.labelled_share balances the windows whose actions are hidden; with "
                          "data.actionless_actions=inverse_dynamics every window has actions: drop it")
    if "hand" not in cfg.policy.keypoints.names():
        raise ConfigError("data.actionless_actions=inverse_dynamics reads the hand's motion from the pixels: add hand "
                          f"to policy.keypoints.targets (now {cfg.policy.keypoints.targets!r})")


def _rows(ds: LeRobotDataset, episodes: Sequence[int], ahead: int, behind: int) -> tuple[np.ndarray, np.ndarray]:
    """Every frame's dataset row (n,) of `episodes`, and the rows of the `ahead` frames after it and the `behind`
    frames before it (n, ahead + behind), clamped to its episode's last and first frames."""
    now = [frame_rows(ds, [e]) for e in episodes]
    steps = np.concatenate([np.arange(1, ahead + 1), -np.arange(1, behind + 1)])
    around = [np.clip(r[:, None] + steps, r[0], r[-1]) for r in now]
    return np.concatenate(now), np.concatenate(around)


def features(found: np.ndarray, hand: int, rows: np.ndarray, around: np.ndarray) -> np.ndarray:
    """(n, K D + A D) what inverse dynamics reads at `rows`: the detector's positions `found` (N, K, D) then the
    hand's displacement to each of `around`'s A frames (n, A)."""
    now = found[rows].reshape(len(rows), -1)
    moved = found[around, hand] - found[rows, None, hand]  # (n, A, D)
    return np.concatenate([now, moved.reshape(len(rows), -1)], 1).astype(np.float32)


def fit_mlp(x: np.ndarray, y: np.ndarray, seed: int, steps: int = 3000, width: int = 256,
            batch_size: int = 256) -> Callable[[np.ndarray], np.ndarray]:
    """A two-layer MLP regressing y (n, Dy) from standardised x (n, Dx), its weights and batches from `seed` (the
    global RNG left as it was); returns its prediction for new rows."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], width), torch.nn.GELU(), torch.nn.Linear(width, width),
                                  torch.nn.GELU(), torch.nn.Linear(width, y.shape[1]))
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    xt, yt = torch.tensor((x - mu) / sd, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        pick = torch.randint(0, len(xt), (batch_size,), generator=gen)
        loss = torch.nn.functional.mse_loss(net(xt[pick]), yt[pick])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()

    def predict(z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.tensor((z - mu) / sd, dtype=torch.float32)).numpy()
    return predict


def r2(pred: np.ndarray, true: np.ndarray) -> list[float | None]:
    """Per action dimension (None where the recorded action does not vary, e.g. reach's gripper)."""
    return [round(float(1 - ((p - t) ** 2).mean() / t.var()), 3) if t.var() > 0 else None
            for p, t in zip(pred.T, true.T)]


def infer_actions(ds: LeRobotDataset, found: np.ndarray, names: list[str], labelled: list[int], unlabelled: list[int],
                  val_eps: list[int], seed: int, cfg: LabelConfig | None = None) -> tuple[dict[int, np.ndarray], dict]:
    """Fit inverse dynamics (`cfg`) on the `labelled` episodes and return the actions it infers for every frame of
    `unlabelled` ({episode: (T, Da)}), each dimension clipped to the range the labelled actions span, and its report
    (R^2 per action dimension on `val_eps` and, scored only, on `unlabelled`'s recorded actions). `found` (N, K, D):
    the detector's positions of `names` for every frame."""
    cfg = cfg or LabelConfig()
    hand = names.index("hand")
    actions = ds.read_columns([ACTION_KEY])[ACTION_KEY]  # (N, Da): the labelled rows train, the held-out score

    def read(episodes: list[int]) -> tuple[np.ndarray, np.ndarray]:
        rows, around = _rows(ds, episodes, cfg.ahead, cfg.behind)
        return rows, features(found, hand, rows, around)

    rows, x = read(labelled)
    fits = [fit_mlp(x, actions[rows], seed + 1000 * i, cfg.steps, cfg.width, cfg.batch_size)
            for i in range(cfg.ensemble)]
    low, high = actions[rows].min(0), actions[rows].max(0)

    def predict(z: np.ndarray) -> np.ndarray:  # the model never labels an action the demos never took
        return np.clip(np.mean([fit(z) for fit in fits], 0), low, high)

    many = f", {cfg.ensemble} MLPs averaged" if cfg.ensemble > 1 else ""
    report = {"reads": f"{','.join(names)} now + the hand {cfg.ahead} frames ahead, {cfg.behind} behind{many}",
              "labelled_frames": len(rows)}
    if val_eps:
        rows, x = read(val_eps)
        report["held_out_r2"] = r2(predict(x), actions[rows])
    rows, x = read(unlabelled)
    inferred = predict(x)  # (n, Da)
    report["inferred_frames"] = len(rows)
    report["recorded_r2"] = r2(inferred, actions[rows])  # simulation records them: scored, never trained on
    starts = episode_starts(ds)
    split = np.cumsum([starts[e + 1] - starts[e] for e in unlabelled])[:-1]
    return dict(zip(unlabelled, np.split(inferred, split))), report
