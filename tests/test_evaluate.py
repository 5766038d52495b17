"""`wam eval`: closed-loop rollouts in worker processes, Wilson intervals, eval_info.json, videos."""

from __future__ import annotations

import json

import numpy as np

import pytest

from tests.test_train import POLICY
from wam.cli import main
from wam.config import apply_overrides
from wam.data.tasks import paraphrases
from wam.envs.collect import CollectConfig, collect
from wam.errors import ConfigError
from wam.evaluate import CRASH_SEED_ENV, EvalConfig, evaluate, side_by_side, wilson
from wam.train import TrainConfig, train_policy


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """Wilson's score interval (z = 1.96) from its textbook form, to check the summaries against."""
    z2, p = 1.96 ** 2, k / n
    centre, half = (p + z2 / (2 * n)), 1.96 * (p * (1 - p) / n + z2 / (4 * n * n)) ** 0.5
    return max(0.0, (centre - half) / (1 + z2 / n)), min(1.0, (centre + half) / (1 + z2 / n))


def test_wilson_interval():
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-3) and high == pytest.approx(0.7634, abs=1e-3)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0 and wilson(0, 0) == (0.0, 1.0)


@pytest.fixture(scope="module")
def reach_policy(tmp_path_factory):
    """A tiny action-only policy trained on 2 reach-v3 demos at 32 px (shared by the eval tests)."""
    root = tmp_path_factory.mktemp("eval")
    collect(CollectConfig(tasks="reach-v3", episodes=2, out=str(root / "d"), image_size=32, workers=1),
            progress_bar=False)
    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "action_only", "data.path": str(root / "d"),
                                          "data.val_fraction": 0.5, "out": str(root / "p")})
    train_policy(cfg, progress=False)
    return root


def test_eval_end_to_end(reach_policy, capsys):
    tmp_path = reach_policy
    info = evaluate(EvalConfig(policy=str(tmp_path / "p"), episodes=2, workers=1, max_steps=12, videos=1,
                               paraphrase=1), progress=False)
    assert info["instructions"] == {"reach-v3": paraphrases("reach-v3")[1]} and info["config"]["paraphrase"] == 1
    assert info["per_task"]["reach-v3"]["episodes"] == 2 and info["overall"]["episodes"] == 2
    assert {e["seed"] for e in info["episodes"]} == {10_000, 10_001}  # never the training scenes 0, 1
    assert all(e["length"] <= 12 for e in info["episodes"]) and info["overall"]["ms_per_chunk"] > 0
    # the summary is the episodes' own: success count, rate and Wilson interval recomputed from them
    wins = sum(e["success"] for e in info["episodes"])
    assert info["overall"]["successes"] == wins and info["overall"]["success"] == wins / 2
    assert info["overall"]["ci95"] == pytest.approx(wilson_by_hand(wins, 2), abs=1e-9)
    assert (tmp_path / "p/eval/eval_episode_0.mp4").exists() and not (tmp_path / "p/eval/eval_episode_1.mp4").exists()
    assert json.loads((tmp_path / "p/eval/eval_info.json").read_text())["overall"]["episodes"] == 2
    assert not list((tmp_path / "p/eval").glob("pred_episode_*"))  # action-only imagines nothing
    assert json.loads((tmp_path / "p/tasks.json").read_text())["env_tasks"] == ["reach-v3"]
    with pytest.raises(ConfigError, match="not trained on push-v3"):
        evaluate(EvalConfig(policy=str(tmp_path / "p"), tasks="push-v3"), progress=False)


def test_a_crashing_worker_is_replaced_and_its_episode_counted_failed(reach_policy, tmp_path, monkeypatch):
    monkeypatch.setenv(CRASH_SEED_ENV, "10000")  # inherited by the spawned workers: that episode always dies
    info = evaluate(EvalConfig(policy=str(reach_policy / "p"), episodes=2, workers=1, max_steps=5, videos=0,
                               out=str(tmp_path / "eval")), progress=False)
    crashed = [e for e in info["episodes"] if e["seed"] == 10_000]
    assert len(crashed) == 1 and not crashed[0]["success"] and "also when run alone" in crashed[0]["error"]
    assert [e["seed"] for e in info["episodes"] if "error" not in e] == [10_001]  # the pool came back
    assert info["per_task"]["reach-v3"]["failed_by_crash"] == 1 and info["overall"]["episodes"] == 2


def test_side_by_side_shows_the_frame_imagined_for_each_step():
    real = np.zeros((10, 8, 8, 3), np.uint8)
    plans = [(0, np.full((2, 8, 8, 3), 1, np.uint8)), (4, np.full((2, 8, 8, 3), 2, np.uint8))]
    plans[0][1][1] = 11  # the first plan's frame aimed at step 0 + 4
    out = side_by_side(real, plans, offsets=(2, 4))  # plan 0 aims at steps 2, 4; plan 1 at 6, 8
    assert out.shape == (10, 8, 18, 3)
    right = out[:, 0, -1, 0]
    assert list(right) == [0, 0, 1, 1, 11, 11, 2, 2, 2, 2]


def test_eval_needs_a_policy(capsys):
    with pytest.raises(ConfigError, match="--policy is required"):
        EvalConfig().check()
    assert main(["eval", "--policy=/nowhere", "--tasks=reach"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_paraphrase_option():
    from wam.data.tasks import instruction, paraphrases
    from wam.evaluate import task_instruction

    assert task_instruction("reach-v3") == instruction("reach-v3")
    assert task_instruction("reach-v3", 2) == paraphrases("reach-v3")[2] != instruction("reach-v3")
    EvalConfig(policy="x", paraphrase=3).check()
    for bad in (-2, 4):
        with pytest.raises(ConfigError, match="--paraphrase must be"):
            EvalConfig(policy="x", paraphrase=bad).check()


def test_the_policy_is_told_the_given_text(monkeypatch):
    """run_episode hands the policy the text it was given (a paraphrase), not the training instruction."""
    import wam.evaluate as ev
    from wam.envs.metaworld import MetaWorldEnv
    from wam.train import TrainConfig

    class Told:
        image_key, imagined, _queue, record_imagination = "observation.images.corner", None, (), False

        def __init__(self):
            self.texts = []

        def reset(self):
            pass

        def select_action(self, obs):
            self.texts.append(obs["task"])
            return np.zeros(4, np.float32)

    cfg = apply_overrides(TrainConfig(), {"data.image_size": 32})
    monkeypatch.setitem(ev._WORKER, "policy", Told())
    monkeypatch.setitem(ev._WORKER, "cfg", cfg)
    monkeypatch.setitem(ev._WORKER, "env", None)
    try:
        ev.run_episode("reach-v3", 10_000, 3, False, "a held-out paraphrase")
        assert set(ev._WORKER["policy"].texts) == {"a held-out paraphrase"}
    finally:
        env = ev._WORKER.get("env")
        if isinstance(env, MetaWorldEnv):
            env.close()
