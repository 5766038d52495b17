"""`wam eval-offline`: action error on held-out demos, with the real or the imagined future, and the
instruction swap, on tiny policies trained from scratch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import write_dataset
from tests.paradigms.test_contract import batch, perturbed, tiny
from tests.test_train import MW_TASKS, POLICY
from wam.cli import main
from wam.config import apply_overrides
from wam.errors import ConfigError
from wam.imagination import bootstrap_ci
from wam.offline_eval import FUTURE_ACTORS, OfflineEvalConfig, anchors, chunk_error, offline_eval
from wam.train import TrainConfig, train_policy

LENGTHS = (20, 22, 24, 26, 21, 23)  # 3 episodes a task; the last of each held out (val_fraction 0.3)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("offline")
    write_dataset(root / "data", lengths=LENGTHS, **MW_TASKS)
    for paradigm in ("inverse_dynamics", "action_only", "hierarchical"):
        cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": paradigm, "data.path": str(root / "data"),
                                              "data.val_fraction": 0.3, "data.video_only_tasks": "push",
                                              "out": str(root / paradigm)})
        train_policy(cfg, progress=False)
    return root


def test_real_and_imagined_future(runs):
    run = runs / "inverse_dynamics"
    real = offline_eval(OfflineEvalConfig(policy=str(run), given_future="real", swap=True, windows_per_episode=3),
                        progress=False)
    assert json.loads((run / "eval_offline.json").read_text()) == json.loads(json.dumps(real))
    assert real["episodes"] == 2 and real["windows"] == 6 and real["given_future"] == "real"
    # the interval resamples whole held-out episodes: recomputed here, loop by loop, from the windows' errors
    errors, eps = np.array(real["per_window"]["error"]), np.array(real["per_window"]["episode"])
    assert len(errors) == 6 and real["mse"] == pytest.approx(errors.mean())
    ids = sorted(set(eps.tolist()))
    picks = np.random.default_rng(0).integers(0, len(ids), (2000, len(ids)))
    means = [np.concatenate([errors[eps == ids[i]] for i in row]).mean() for row in picks]
    assert real["ci95"] == pytest.approx([np.percentile(means, 2.5), np.percentile(means, 97.5)], rel=1e-9)
    assert real["per_task"]["push-v3"]["video_only"] and not real["per_task"]["reach-v3"]["video_only"]
    assert real["per_task"]["push-v3"]["windows"] == 3
    assert real["real_minus_imagined"] == pytest.approx(real["mse"] - real["imagined_mse"])
    assert real["mse"] != real["imagined_mse"]  # the real future changes the actions
    # the imagined run on the same windows and noise gives the paired run's imagined error exactly
    imagined = offline_eval(OfflineEvalConfig(policy=str(run), windows_per_episode=3, out=str(runs / "i.json")),
                            progress=False)
    assert imagined["mse"] == pytest.approx(real["imagined_mse"]) and "real_minus_imagined" not in imagined
    swap = real["swap"]
    assert swap["action_margin"] == pytest.approx(swap["action_mse"] - real["imagined_mse"])
    assert swap["psnr_windows"] == 4  # windows whose whole future lies inside the episode
    assert np.isfinite(swap["psnr_moving"]) and np.isfinite(swap["swap_margin_db"])


def test_hierarchical_error_at_each_subgoal_offset(runs):
    """The executor is scored with the subgoal at each offset it trains on (2 and 4 steps ahead here); with
    the real subgoal at F = 4 it is exactly the `given_future=real` score (same windows, same noise)."""
    r = offline_eval(OfflineEvalConfig(policy=str(runs / "hierarchical"), given_future="real", windows_per_episode=3,
                                       out=str(runs / "h.json")), progress=False)
    assert set(r["per_offset"]) == {"2", "4"} and all(set(v) == {"imagined", "real"} for v in r["per_offset"].values())
    assert r["per_offset"]["4"]["real"]["mse"] == pytest.approx(r["mse"])
    assert r["per_offset"]["2"]["real"]["mse"] != pytest.approx(r["mse"])


def test_action_only_swap_and_cli(runs, capsys):
    assert main(["eval-offline", f"--policy={runs / 'action_only'}", "--windows_per_episode=2", "--swap=true"]) == 0
    out = json.loads((runs / "action_only/eval_offline.json").read_text())
    assert out["windows"] == 4 and "action_margin" in out["swap"] and "swap_margin_db" not in out["swap"]
    assert "action MSE" in capsys.readouterr().out


def test_real_future_refused_where_no_future_is_acted_from(runs):
    assert FUTURE_ACTORS == ["future_conditioned+tokens", "hierarchical+tokens", "inverse_dynamics+latent_actions",
                             "inverse_dynamics+tokens", "mimic+tokens"]
    with pytest.raises(ConfigError, match="inverse_dynamics\\+tokens"):
        offline_eval(OfflineEvalConfig(policy=str(runs / "action_only"), given_future="real"), progress=False)
    with pytest.raises(ConfigError, match="--given_future must be"):
        OfflineEvalConfig(policy="x", given_future="dreamed").check()


def test_chunk_error_leaves_padded_steps_out():
    target = torch.zeros(2, 3, 4)
    pred = target.clone()
    pred[:, 2] = 5.0  # wrong only on the last step
    pad = torch.tensor([[False, False, True], [False, False, False]])
    assert np.allclose(chunk_error(pred, target, pad), [0.0, 25.0 / 3])


def test_anchors_are_evenly_spaced_per_episode():
    assert list(anchors(np.array([5, 3]), 2)) == [0, 4, 5, 7]
    assert list(anchors(np.array([2, 2]), 0)) == [0, 1, 2, 3]
    assert list(anchors(np.array([2]), 5)) == [0, 1]  # never the same window twice


def test_bootstrap_resamples_whole_episodes():
    values = np.array([0.0, 0.0, 1.0, 1.0])
    lo, hi = bootstrap_ci(values, np.array([0, 0, 1, 1]))
    assert lo == 0.0 and hi == 1.0  # two episodes: a resample holds one of them twice half the time
    assert bootstrap_ci(values, np.zeros(4)) == (0.5, 0.5)  # one episode: no spread to resample


def test_hierarchical_acts_toward_the_given_future_subgoal():
    p = perturbed(tiny("hierarchical"), 0.05)
    future = torch.randn(4, 2, 4, 4, 4)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = p.act(batch(), generator=g(), given_future=future)
    assert torch.equal(a, p.act(batch(), generator=g(), given_subgoal=future[:, p.cfg.hierarchical.subgoal_index]))
    assert not torch.allclose(a, p.act(batch(), generator=g(), given_future=future + 1))
