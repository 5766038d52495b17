"""A study's preflight (existing datasets, scene seeds, the total budget), its plan (`--dry_run`) and
`arms_seen` on a world model pretrained on an action-free pool."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

import wam.study as study_module
from tests.conftest import IMAGE_KEY, drop_column, write_dataset
from tests.test_pretrain import tiny_config
from tests.test_study import tiny_study as _tiny_study
from wam.cli import main
from wam.data.tasks import resolve_tasks
from wam.errors import ConfigError
from wam.pretrain import pretrain
from wam.study import load_study
from wam.study_plan import arms_seen, cell_cost, plan_lines, preflight



def tiny_study(out, **extra):
    """The tiny study of tests/test_study.py, without its collected video pool unless asked."""
    return _tiny_study(out, **{"data.video.collect.tasks": "", **extra})


GRID = {"data.collect.episodes": 6, "demos": [1, 2], "seeds": [0, 1], "budget.cpu_seconds": 100,
        "eval.episodes": 4, "eval.max_steps": 50, "budget.eval_ms_per_step": 10}  # 2 variants x 2 x 2 = 8 cells


def test_total_budget_is_the_cells_training_plus_evaluation(tmp_path):
    # by hand: 8 cells x (100 s + 4 episodes x 2 tasks x 50 steps x 10 ms = 4 s) = 832 CPU s = 0.2311 h
    assert cell_cost(tiny_study(tmp_path, **GRID), 2).total_s == pytest.approx(832)
    preflight(tiny_study(tmp_path, **GRID, **{"budget.total_cpu_hours": 0.232}))
    with pytest.raises(ConfigError, match=r"budget.total_cpu_hours=0.23 .*8 cells x \(100 s training \+ 4 s "
                                          r"evaluation: 8 episodes x 50 steps x 10 ms\) = 832 CPU s"):
        preflight(tiny_study(tmp_path, **GRID, **{"budget.total_cpu_hours": 0.23}))
    with pytest.raises(ConfigError, match="= 864 CPU s"):  # a second evaluation per cell (a paraphrase): 8 x 108
        preflight(tiny_study(tmp_path, **GRID, **{"budget.total_cpu_hours": 0.232}, extra_paraphrases=[0]))
    with pytest.raises(ConfigError, match="needs budget.cpu_seconds"):
        preflight(tiny_study(tmp_path, **{**GRID, "budget.cpu_seconds": 0}, **{"budget.steps": 9,
                                                                               "budget.total_cpu_hours": 1}))


def test_existing_dataset_too_few_demos_for_one_task(tmp_path):
    write_dataset(tmp_path / "d", lengths=(20,) * 7)  # task0: 4 episodes, task1: 3 (tasks alternate)
    ok = tiny_study(tmp_path / "s", demos=[2], **{"data.path": str(tmp_path / "d"), "train.data.val_fraction": 0.25})
    preflight(ok)  # 3 and 2 training episodes, 1 held out each
    with pytest.raises(ConfigError, match=r"demos 3 per task, but .*/d holds 3 episodes of task1 \(2 for training, "
                                          r"1 held out at train.data.val_fraction=0.25\)"):
        preflight(tiny_study(tmp_path / "s", demos=[1, 3], **{"data.path": str(tmp_path / "d"),
                                                               "train.data.val_fraction": 0.25}))


def test_existing_dataset_holding_the_evaluation_scenes(tmp_path):
    write_dataset(tmp_path / "d", lengths=(20,) * 4)  # scene seeds 0..3
    at = lambda seed: tiny_study(tmp_path / "s", **{"data.path": str(tmp_path / "d"), "eval.seed": seed})  # noqa: E731
    preflight(at(4))
    with pytest.raises(ConfigError, match=r"data.path=.* holds scene seeds 3..3, which the evaluation uses"):
        preflight(at(3))


def test_video_pool_filmed_by_another_camera(tmp_path):
    write_dataset(tmp_path / "d", lengths=(20,) * 4)
    write_dataset(tmp_path / "pool")
    same = {"data.path": str(tmp_path / "d"), "eval.seed": 100}
    preflight(tiny_study(tmp_path / "s", **same, **{"data.video.path": str(tmp_path / "pool")}))
    with pytest.raises(ConfigError, match=rf"data.video.collect.camera=corner2: the world model would learn from "
                                          rf"observation.images.corner2, the policies act from {IMAGE_KEY}"):
        preflight(tiny_study(tmp_path / "s", **same, **{"data.video.collect.tasks": "reach",
                                                         "data.video.collect.camera": "corner2"}))


def test_refused_before_anything_runs(tmp_path, monkeypatch):
    calls = []
    for name in ("collect", "pretrain", "train_policy", "evaluate"):
        monkeypatch.setattr(study_module, name, lambda *a, _n=name, **k: calls.append(_n))
    with pytest.raises(ConfigError, match="budget.total_cpu_hours"):
        study_module.run_study(tiny_study(tmp_path / "s", **GRID, **{"budget.total_cpu_hours": 0.1}), progress=False)
    assert calls == [] and not (tmp_path / "s").exists()


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, monkeypatch):
    calls = []
    for name in ("collect", "pretrain", "train_policy", "evaluate", "run_study"):
        monkeypatch.setattr(study_module, name, lambda *a, _n=name, **k: calls.append(_n))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["study", "video_pays", "--dry_run", f"--out={tmp_path / 's'}"]) == 0
    text = out.getvalue()
    cfg = load_study("video_pays")
    n = len(cfg.variants) * len(cfg.demos) * len(cfg.seeds)
    per_cell = cfg.budget.cpu_seconds + 5 * cfg.eval.episodes * cfg.eval.max_steps * cfg.budget.eval_ms_per_step / 1000
    assert f"study video_pays: {n} cells = 5 variants x 3 demo sizes [2, 5, 20] x 3 seeds [0, 1, 2]" in text
    assert f"cells: {n} x {per_cell:.0f} s = {n * per_cell:.0f} CPU s" in text and "2 cells side by side" in text
    assert "labelled demos only (pixels" in text and "pretraining video: STUDY/video" in text
    assert calls == [] and not (tmp_path / "s").exists()
    assert plan_lines(cfg) == text.strip().splitlines()


def test_named_study_video_pays():
    cfg = load_study("video_pays")
    preflight(cfg)  # fits its own total_cpu_hours
    assert [(v.paradigm, v.init) for v in cfg.variants] == [("representation", "pretrained"), ("joint", "pretrained"),
                                                            ("action_only", "scratch"), ("conv_reference", "scratch"),
                                                            ("mimic", "pretrained")]
    assert cfg.demos == [2, 5, 20] and cfg.seeds == [0, 1, 2] and cfg.eval.episodes >= 20 and cfg.parallel == 2
    pool = cfg.data.video.collect
    mw5 = set(resolve_tasks("mw5"))
    assert set(resolve_tasks(cfg.train.data.tasks)) == mw5 and mw5 < set(resolve_tasks(pool.tasks))  # + other tasks
    assert len(set(resolve_tasks(pool.tasks)) - mw5) >= 5
    assert pool.episodes >= 50 and pool.camera == cfg.data.collect.camera == "corner2"
    assert cfg.data.collect.image_size == 128 and cfg.pretrain.model.action_chunk == 0


def test_arms_seen_on_a_pool_without_actions(tmp_path):
    write_dataset(tmp_path / "pool", lengths=(20,) * 6)  # 2 tasks x 3 episodes
    drop_column(tmp_path / "pool", "action")  # no action column at all: pretraining must not need one
    write_dataset(tmp_path / "d", lengths=(20,) * 8)
    pretrain(tiny_config(tmp_path / "pool", tmp_path / "wm", **{"optim.steps": 2, "tokenizer.steps": 2}),
             progress=False)
    cfg = tiny_study(tmp_path / "s", demos=[1, 3], **{"data.path": str(tmp_path / "d"),
                                                      "train.data.val_fraction": 0.25})
    seen = arms_seen(cfg, tmp_path / "wm", tmp_path / "d")
    split = json.loads((tmp_path / "wm/split.json").read_text())
    assert seen["video"] == {"path": str(tmp_path / "pool"), "reads_actions": False, "episodes": len(split["train"]),
                             "frames": 20 * len(split["train"]), "episodes_per_task": {"task0": 2, "task1": 2}}
    assert seen["labelled"]["per_demos"] == {"1": {"episodes": 2, "frames": 40}, "3": {"episodes": 6, "frames": 120}}
    assert set(seen["arms"]) == {"repr", "baseline"}


def test_keypoint_views_the_demos_do_not_film_are_refused(tmp_path):
    write_dataset(tmp_path / "d", lengths=(20,) * 4)
    kp = {"train.policy.keypoints.targets": "goal", "train.policy.keypoints.views": "corner", "eval.seed": 100}
    with pytest.raises(ConfigError, match=r"policy.keypoints.views=corner reads camera corner, which data.path=.*/d "
                                          r"does not film"):
        preflight(tiny_study(tmp_path / "s", **kp, **{"data.path": str(tmp_path / "d")}))
    with pytest.raises(ConfigError, match=r"which data.collect.views=\(none\) does not film"):
        preflight(tiny_study(tmp_path / "s", **kp))
    preflight(tiny_study(tmp_path / "s", **kp, **{"data.collect.views": "corner"}))  # the study films it


def test_the_plan_gives_each_arm_s_steps_once_its_rate_is_measured(tmp_path):
    """Equal CPU budgets are unequal steps: once rates.json holds an arm's samples/s, the dry run says its steps."""
    cfg = tiny_study(tmp_path / "s", **GRID)
    assert not any(line.startswith("steps a cell") for line in plan_lines(cfg))
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "rates.json").write_text(json.dumps({"repr": 16.0}))  # the baseline not measured yet
    batch = cfg.train.optim.batch_size
    steps = [line for line in plan_lines(cfg) if line.startswith("steps a cell")]
    assert steps == [f"steps a cell at the rates measured in {tmp_path / 's' / 'rates.json'}: "
                     f"repr {round(100 * 16.0 / batch)} (16.0 samples/s)"]


def test_the_plan_says_what_an_equal_steps_arm_costs(tmp_path):
    """`steps_of`: the plan warns that its cells spend more than the budget, then gives its steps and their CPU."""
    cfg = tiny_study(tmp_path / "s", **GRID, variants=[{"name": "a", "paradigm": "action_only", "init": "scratch"},
                                                       {"name": "j", "paradigm": "joint", "steps_of": "a"}])
    assert any(line.startswith("equal steps, not equal CPU (steps_of): j (as a)") for line in plan_lines(cfg))
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "rates.json").write_text(json.dumps({"a": 32.0, "j": 8.0}))
    batch = cfg.train.optim.batch_size
    steps = round(100 * 32.0 / batch)
    line = next(line for line in plan_lines(cfg) if line.startswith("steps a cell"))
    assert line.endswith(f"a {steps} (32.0 samples/s), j {steps} (steps_of a: ~{steps * batch / 8.0:.0f} CPU s a cell "
                         "at its 8.0 samples/s)")
