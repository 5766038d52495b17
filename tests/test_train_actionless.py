"""`data.actionless_per_task` and `data.labelled_share`: more episodes of the target tasks train with their actions
hidden (video loss, recorded positions for policy.aux), in batches that keep the labelled windows' share."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import write_dataset
from tests.paradigms.test_auxiliary import write_positions
from tests.test_train import MW_TASKS, POLICY
from wam.config import apply_overrides
from wam.data.lerobot_format import LeRobotDataset
from wam.data.windows import WindowDataset, WindowSpec, with_labelled_share
from wam.errors import ConfigError
from wam.pretrain import PretrainConfig
from wam.train import TrainConfig, actionless_extras, load_policy, train_policy


def test_labelled_windows_are_repeated_to_their_share(tmp_path):
    write_dataset(tmp_path / "d", lengths=(20, 22, 24, 26, 30))
    windows = WindowDataset(LeRobotDataset(tmp_path / "d"), WindowSpec(action=(0, 1)), actionless=[1, 2, 3, 4])
    mixed, share = with_labelled_share(windows, 0.5)  # 20 labelled windows, 102 hidden: 5 copies -> 100 / 202
    index = np.array(mixed.indices)
    counts = np.bincount(index, minlength=len(windows))
    assert (counts[:20] == 5).all() and (counts[20:] == 1).all() and len(mixed) == 202
    assert share == pytest.approx(100 / 202)
    labelled = [not mixed[i]["action_is_pad"].all() for i in range(0, len(mixed), 7)]
    assert np.mean(labelled) == pytest.approx(0.5, abs=0.1)
    assert with_labelled_share(windows, 0.0) == (windows, 20 / 122)  # 0: windows as they come
    plain = WindowDataset(LeRobotDataset(tmp_path / "d"), WindowSpec(action=(0, 1)))
    assert with_labelled_share(plain, 0.5) == (plain, 1.0)  # nothing hidden: nothing to balance


def test_the_extra_episodes_follow_the_demos_and_never_the_held_out(tmp_path):
    write_dataset(tmp_path / "d", lengths=(20,) * 10, **MW_TASKS)  # 5 a task: 4 train, 1 held out
    ds = LeRobotDataset(tmp_path / "d")
    base = {"data.path": str(tmp_path / "d"), "data.episodes_per_task": 1, "paradigm": "joint"}
    cfg = lambda more: apply_overrides(TrainConfig(), {**base, "data.actionless_per_task": more})  # noqa: E731
    demos = [0, 1]  # the first training episode of each task (reach: even episodes, push: odd)
    assert actionless_extras(cfg(2), ds, demos) == [2, 3, 4, 5]
    assert actionless_extras(cfg(-1), ds, demos) == [2, 3, 4, 5, 6, 7]  # 8 and 9 are held out
    assert actionless_extras(cfg(0), ds, demos) == []
    with pytest.raises(ConfigError, match="fewer training episodes"):
        actionless_extras(cfg(4), ds, demos)


def test_action_only_with_aux_trains_on_hidden_episodes(tmp_path, capsys):
    write_positions(tmp_path / "data")  # one task, 4 episodes: 3 train (1 labelled + 2 hidden), 1 held out
    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "action_only", "policy.aux.targets": "object",
                                          "data.path": str(tmp_path / "data"), "data.episodes_per_task": 1,
                                          "data.actionless_per_task": -1, "data.labelled_share": 0.5,
                                          "out": str(tmp_path / "p")})
    metrics = train_policy(cfg, progress=False)
    assert np.isfinite(metrics["aux_loss"]) and np.isfinite(metrics["action_loss"])
    assert "2 more episodes with actions hidden (47% of windows labelled)" in capsys.readouterr().out  # 2 x 20 / (2 x 20 + 24 + 22)
    split = json.loads((tmp_path / "p/split.json").read_text())
    assert split == {"train": [0, 1, 2], "val": [3], "actionless": [1, 2], "labelled": [0]}
    policy, saved = load_policy(tmp_path / "p")
    assert saved.data.actionless_per_task == -1
    labelled = LeRobotDataset(tmp_path / "data").read_columns(["action"], [0])["action"]  # its actions alone
    assert np.allclose(policy.normalizer.action_min.numpy(), labelled.min(0))


@pytest.mark.parametrize("overrides,what", [
    ({"data.episodes_per_task": 0}, "every training episode is labelled"),
    ({"paradigm": "action_only"}, "nothing in a 'action_only' policy"),
    ({"paradigm": "conv_reference"}, "nothing in a 'conv_reference' policy"),
    ({"data.actionless_per_task": -2}, ">= -1"),
    ({"data.labelled_share": 1.0}, r"\[0, 1\)"),
])
def test_bad_actionless_settings_are_refused(overrides, what):
    base = {"paradigm": "joint", "data.episodes_per_task": 2, "data.actionless_per_task": 3}
    with pytest.raises(ConfigError, match=what):
        apply_overrides(TrainConfig(), {**base, **overrides}).check()
    with pytest.raises(ConfigError, match="pretraining reads every"):
        apply_overrides(PretrainConfig(), {"data.actionless_per_task": 3}).check()
