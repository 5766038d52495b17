"""StudyConfig's checks that need no data: the video pool, scene seeds, the budget's new fields, `parallel`."""

from __future__ import annotations

import pytest

from tests.test_study import tiny_study
from wam.errors import ConfigError
from wam.study_config import check_resume
from wam.config import save_config

POOL = {"data.video.collect.tasks": "reach,drawer-close", "data.video.collect.episodes": 2}


@pytest.mark.parametrize("extra, match", [
    ({**POOL, "pretrain.data.path": "elsewhere"}, "and so is pretrain.data.path: set one"),
    ({**POOL, "pretrain.model.action_chunk": 4}, r"action-conditioned world model .*would read its actions"),
    ({**POOL, "data.video.collect.camera": "corner2"}, "corner2 but the labelled demos are filmed by .*corner4"),
    ({**POOL, "data.video.collect.tasks": "reach,no-such-task"}, "no-such-task"),
    ({**POOL, "data.video.collect.seed": 9990}, r"data.video.collect may use scene seeds 9990..10003 .*overlap "
                                                r".*10000"),
    ({"eval.seed": 5}, r"data.collect may use scene seeds 0..13 .*overlap the evaluation's 5..5"),
    ({"parallel": 0}, "parallel must be >= 1"),
    ({"budget.total_cpu_hours": -1}, "budget.total_cpu_hours and budget.eval_ms_per_step must be >= 0"),
])
def test_refused(tmp_path, extra, match):
    with pytest.raises(ConfigError, match=match):
        tiny_study(tmp_path, **extra).check()


@pytest.mark.parametrize("extra", [
    POOL,
    {**POOL, "data.video.path": "some/pool"},  # an existing pool wins; its collect settings are not used
    {**POOL, "pretrain_run": "runs/wm", "pretrain.model.action_chunk": 4},  # a reused world model: the pool is unused
    {**POOL, "data.video.collect.seed": 10001, "eval.seed": 20000},
    {"eval.seed": 14},  # just past data.collect's 2 x 2 + 10 attempts
    {"data.path": "some/data", "eval.seed": 5},  # an existing dataset: its recorded seeds are checked (preflight)
])
def test_accepted(tmp_path, extra):
    tiny_study(tmp_path, **extra).check()


def test_resume_ignores_parallel_and_the_cap(tmp_path):
    cfg = tiny_study(tmp_path)
    save_config(cfg, tmp_path / "study.yaml")
    check_resume(tiny_study(tmp_path, **{"parallel": 2, "budget.total_cpu_hours": 3}), tmp_path)
    with pytest.raises(ConfigError, match="other settings .*data.video.collect.tasks"):
        check_resume(tiny_study(tmp_path, **POOL), tmp_path)


def test_a_step_budget_alone_is_enough(tmp_path):
    """`budget: {steps: N}` (as the study docstring shows) is not refused for the default CPU budget; a study that
    sets neither trains each cell 300 CPU-s."""
    from wam.study_config import load_study

    path = tmp_path / "s.yaml"
    for text, want in (("budget: {steps: 1000}", (1000, 0)), ("budget: {cpu_seconds: 60}", (0, 60)), ("name: s", (0, 300))):
        path.write_text(text + "\n")
        cfg = load_study(str(path))
        cfg.check()
        assert (cfg.budget.steps, cfg.budget.cpu_seconds) == want, text
