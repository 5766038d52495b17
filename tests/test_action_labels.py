"""`data.actionless_actions=inverse_dynamics` (wam.action_labels): the episodes trained without recorded actions get
actions inferred from their video by inverse dynamics fitted on the labelled demos."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import write_dataset
from tests.test_train import POLICY
from wam.action_labels import LabelConfig, _rows, infer_actions
from wam.config import apply_overrides
from wam.data.frames import episode_starts
from wam.data.lerobot_format import LeRobotDataset
from wam.data.windows import WindowDataset, WindowSpec
from wam.errors import ConfigError, DatasetError
from wam.pretrain import PretrainConfig
from wam.train import TrainConfig, train_policy


def moved_hand(ds: LeRobotDataset, step: float = 0.1, seed: int = 0) -> np.ndarray:
    """(N, 2, 3) positions a detector would find: a hand that moves by `step` x the recorded action's xyz each frame,
    and an object that does not follow the actions."""
    actions = ds.read_columns(["action"])["action"]
    starts = episode_starts(ds)
    found = np.random.default_rng(seed).normal(size=(len(actions), 2, 3)).astype(np.float32) * 0.1
    for e in range(ds.num_episodes):
        a, b = starts[e], starts[e + 1]
        found[a:b, 0] = np.concatenate([[[0, 0, 0]], np.cumsum(step * actions[a:b - 1, :3], 0)])
    return found


FAST = LabelConfig(steps=600)


def test_inverse_dynamics_reads_the_action_from_the_hand_motion(tmp_path):
    write_dataset(tmp_path / "d", lengths=(40,) * 10)
    ds = LeRobotDataset(tmp_path / "d")
    found = moved_hand(ds)
    state = torch.random.get_rng_state()
    labels, report = infer_actions(ds, found, ["hand", "object"], [0, 1, 2, 3, 4, 5], [6, 7], [8, 9], seed=0, cfg=FAST)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is left alone
    assert sorted(labels) == [6, 7] and all(v.shape == (40, 4) for v in labels.values())
    # xyz follow the hand's motion (the last frame has no next one: its action is not in the video); the gripper
    # does not move the hand, so nothing in the video tells it
    assert min(report["held_out_r2"][:3]) > 0.7 and min(report["recorded_r2"][:3]) > 0.7
    assert report["recorded_r2"][3] < 0.3
    recorded = ds.read_columns(["action"], [6])["action"]
    assert np.corrcoef(labels[6][:-1, 0], recorded[:-1, 0])[0, 1] > 0.9
    again, _ = infer_actions(ds, found, ["hand", "object"], [0, 1, 2, 3, 4, 5], [6, 7], [8, 9], seed=0, cfg=FAST)
    assert all(np.array_equal(labels[e], again[e]) for e in labels)  # a seed gives one set of labels
    still = found.copy()
    still[:, 0] = 0  # a hand that never moves: the future says nothing, the labels are no better than a guess
    _, blind = infer_actions(ds, still, ["hand", "object"], [0, 1, 2, 3, 4, 5], [6, 7], [8, 9], seed=0, cfg=FAST)
    assert max(blind["recorded_r2"][:3]) < 0.3


def test_labels_stay_in_the_range_the_demos_took(tmp_path):
    write_dataset(tmp_path / "d", lengths=(40,) * 8)
    ds = LeRobotDataset(tmp_path / "d")
    found = moved_hand(ds)
    starts = episode_starts(ds)
    found[starts[6]:starts[8], 0] *= 5  # the unlabelled episodes' hand moves five times as far as any demo's
    labels, _ = infer_actions(ds, found, ["hand", "object"], [0, 1, 2, 3, 4, 5], [6, 7], [], seed=0, cfg=FAST)
    taken = ds.read_columns(["action"], [0, 1, 2, 3, 4, 5])["action"]
    inferred = np.concatenate([labels[6], labels[7]])
    assert (inferred >= taken.min(0)).all() and (inferred <= taken.max(0)).all()
    assert np.isclose(inferred[:, :3], taken.max(0)[:3]).any()  # the fit extrapolates past the range; it is clipped


def test_an_ensemble_averages_its_members(tmp_path):
    write_dataset(tmp_path / "d", lengths=(40,) * 8)
    ds = LeRobotDataset(tmp_path / "d")
    found = moved_hand(ds)
    args = (ds, found, ["hand", "object"], [0, 1, 2, 3, 4, 5], [6, 7], [])
    both, report = infer_actions(*args, seed=3, cfg=LabelConfig(steps=200, ensemble=2))
    one, _ = infer_actions(*args, seed=3, cfg=LabelConfig(steps=200))
    other, _ = infer_actions(*args, seed=1003, cfg=LabelConfig(steps=200))
    taken = ds.read_columns(["action"], [0, 1, 2, 3, 4, 5])["action"]
    within = lambda a: (a > taken.min(0)) & (a < taken.max(0))  # noqa: E731  (not clipped)
    for e in (6, 7):
        inside = within(one[e]) & within(other[e])
        assert inside.mean() > 0.5 and np.allclose(both[e][inside], ((one[e] + other[e]) / 2)[inside], atol=1e-6)
    assert "2 MLPs averaged" in report["reads"]


def test_the_frames_read_around_each_frame_stay_in_its_episode(tmp_path):
    write_dataset(tmp_path / "d", lengths=(5, 6))
    rows, around = _rows(LeRobotDataset(tmp_path / "d"), [1], ahead=2, behind=3)
    assert rows.tolist() == list(range(5, 11))
    assert around[0].tolist() == [6, 7, 5, 5, 5]  # 2 ahead, then 3 behind, clamped to the first frame
    assert around[-1].tolist() == [10, 10, 9, 8, 7]  # the last frame's future is itself


def test_windows_serve_the_given_actions(tmp_path):
    write_dataset(tmp_path / "d", lengths=(20, 22, 24))
    ds = LeRobotDataset(tmp_path / "d")
    given = np.full((22, 4), 0.5, np.float32)
    windows = WindowDataset(ds, WindowSpec(action=(0, 1)), labels={1: given})
    sample = windows[20 + 3]  # episode 1, frame 3
    assert sample["episode_index"] == 1 and torch.equal(sample["action"], torch.full((2, 4), 0.5))
    assert not sample["action_is_pad"].any()
    assert torch.equal(windows[3]["action"], torch.from_numpy(ds.read_columns(["action"], [0])["action"][3:5]))
    with pytest.raises(DatasetError, match="episode 1: \\(21, 4\\) actions given for its 22 frames"):
        WindowDataset(ds, WindowSpec(action=(0, 1)), labels={1: given[:21]})


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    from wam.envs.collect import CollectConfig, collect

    root = tmp_path_factory.mktemp("idm") / "push"
    collect(CollectConfig(tasks="push-v3", episodes=4, out=str(root), image_size=32, workers=1), progress_bar=False)
    return root


def test_train_labels_the_extra_episodes_and_trains_on_them(pushed, tmp_path, monkeypatch, capsys):
    import wam.train as train_module

    served = []
    real = train_module.policy_windows
    monkeypatch.setattr(train_module, "policy_windows", lambda *a: served.append(real(*a)) or served[-1])
    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "action_only", "data.path": str(pushed),
                                          "policy.keypoints.targets": "hand,object,goal", "policy.keypoints.steps": 20,
                                          "data.episodes_per_task": 1, "data.actionless_per_task": -1,
                                          "data.actionless_actions": "inverse_dynamics", "labels.steps": 50,
                                          "out": str(tmp_path / "p")})
    train_policy(cfg, progress=False)
    out = capsys.readouterr().out
    assert "2 more episodes with actions inferred" in out and "hand 8 frames ahead, 4 behind" in out
    split = json.loads((tmp_path / "p/split.json").read_text())
    report = json.loads((tmp_path / "p/action_labels.json").read_text())
    assert len(report["recorded_r2"]) == 4 and report["inferred_frames"] > 0
    cost = json.loads((tmp_path / "p/setup_cost.json").read_text())  # the fits outside optim.steps, timed
    assert set(cost) == {"keypoint_fit", "action_labels"} and all(c["wall_s"] > 0 for c in cost.values())
    windows = served[0]
    for e in split["actionless"]:  # the training windows of the labelled video: inferred actions, none masked
        i = windows.episode_ids.index(e)
        start, n = windows.starts[i], windows.lengths[i]
        assert not windows.actionless[i]
        assert np.array_equal(windows.columns["action"][start:start + n], windows.labels[e])
        recorded = LeRobotDataset(pushed).read_columns(["action"], [e])["action"]
        assert not np.allclose(windows.labels[e], recorded)


@pytest.mark.parametrize("overrides,what", [
    ({"data.actionless_actions": "guess"}, "one of hidden, inverse_dynamics"),
    ({"data.actionless_per_task": 0}, "would label nothing"),
    ({"policy.keypoints.targets": "object,goal"}, "add hand to policy.keypoints.targets"),
    ({"data.labelled_share": 0.5}, "every window has actions"),
    ({"labels.ahead": 0}, "labels.ahead must be >= 1"),
    ({"labels.behind": -1}, "labels.behind must be >= 0"),
    ({"labels.ensemble": 0}, "labels.ensemble must be >= 1"),
])
def test_bad_inference_settings_are_refused(overrides, what):
    base = {"paradigm": "action_only", "data.episodes_per_task": 2, "data.actionless_per_task": 3,
            "data.actionless_actions": "inverse_dynamics", "policy.keypoints.targets": "hand,object"}
    apply_overrides(TrainConfig(), base).check()
    with pytest.raises(ConfigError, match=what):
        apply_overrides(TrainConfig(), {**base, **overrides}).check()
    with pytest.raises(ConfigError, match="with data.actionless_actions=hidden nothing reads them"):
        apply_overrides(TrainConfig(), {**base, "data.actionless_actions": "hidden", "labels.behind": 2}).check()
    with pytest.raises(ConfigError, match="pretraining reads every"):
        apply_overrides(PretrainConfig(), {"data.actionless_actions": "inverse_dynamics"}).check()
