"""`wam study` end to end on a tiny study (2 Meta-World tasks at 32 px, a tiny world model pretrained on a
separate action-free video pool of 3 tasks, 2 variants), resuming without re-running finished cells, cells
side by side, `data.episodes_per_task`, and refused configs."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

import wam.study as study_module
from tests.conftest import write_dataset
from tests.test_evaluate import wilson_by_hand
from tests.test_pretrain import TINY
from tests.test_train import POLICY
from wam.config import apply_overrides
from wam.data.lerobot_format import LeRobotDataset
from wam.data.tasks import paraphrases
from wam.errors import ConfigError
from wam.evaluate import EvalConfig, task_instruction
from wam.pretrain import split_episodes
from wam.train import TrainConfig, trained_tasks
from wam.quickstart import five_lines, parse_quickstart
from wam.study import StudyConfig, VariantSpec, load_study, run_study

VARIANTS = [VariantSpec("repr", "representation", init="pretrained"), VariantSpec("baseline", "action_only", init="scratch")]
STUDY = {"name": "tiny", "question": "Does the tiny WAM beat the tiny baseline?",
         "data.collect.tasks": "reach-v3,button-press-topdown-v3", "data.collect.episodes": 2,
         "data.collect.image_size": 32, "data.collect.workers": 1,
         "data.video.collect.tasks": "reach-v3,button-press-topdown-v3,drawer-close-v3", "data.video.collect.episodes": 2,
         "data.video.collect.image_size": 32, "data.video.collect.workers": 1,
         **{f"pretrain.{k}": v for k, v in TINY.items()}, "pretrain.data.val_fraction": 0.5,
         **{f"train.{k}": v for k, v in POLICY.items()}, "train.data.val_fraction": 0.5,
         "variants": VARIANTS, "demos": [1], "seeds": [0],
         "budget.cpu_seconds": 0.3, "budget.measure_steps": 2,
         "eval.episodes": 1, "eval.workers": 1, "eval.max_steps": 10, "eval.videos": 1, "eval.paraphrase": 0}
CELL_KEYS = {"variant", "paradigm", "integration", "init", "video_weight", "demos", "seed", "run", "success", "ci95",
             "episodes", "per_task", "ms_per_chunk", "train_seconds", "steps", "extra", "runtime"}


def tiny_study(out: Path, **extra) -> StudyConfig:
    return apply_overrides(StudyConfig(), {**STUDY, "out": str(out), **extra})


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("study") / "s"
    cfg = tiny_study(root)
    return cfg, root, run_study(cfg, progress=False)


def test_tiny_study_end_to_end(finished):
    cfg, root, summary = finished
    assert summary == json.loads((root / "summary.json").read_text())
    assert summary["study"] == "tiny" and summary["question"].startswith("Does") and summary["planned_cells"] == 2
    assert set(summary["samples_per_s"]) == {"repr", "baseline"} and all(r > 0 for r in summary["samples_per_s"].values())
    cells = {c["variant"]: c for c in summary["cells"]}
    assert set(cells) == {"repr", "baseline"}
    for name, c in cells.items():
        assert set(c) == CELL_KEYS and c["run"] == f"cells/{name}__d1__s0" and (c["demos"], c["seed"]) == (1, 0)
        assert c["episodes"] == 2 and set(c["per_task"]) == {"reach-v3", "button-press-topdown-v3"}
        assert c["ms_per_chunk"] > 0
        # equal CPU budget: steps = cpu_seconds x the variant's measured rate / batch size
        assert c["steps"] == max(1, round(0.3 * summary["samples_per_s"][name] / 4))
        assert json.loads((root / c["run"] / "split.json").read_text())["train"].__len__() == 2  # 1 demo x 2 tasks
        info = json.loads((root / c["run"] / "eval/eval_info.json").read_text())
        wins = sum(e["success"] for e in info["episodes"])  # the cell's numbers are its own episodes'
        assert c["success"] == wins / 2 and c["ci95"] == pytest.approx(wilson_by_hand(wins, 2), abs=1e-9)
        assert info["instructions"] == {t: paraphrases(t)[0] for t in ("reach-v3", "button-press-topdown-v3")}
        steps = sum(e["length"] for e in info["episodes"])  # the evaluation's measured cost, to check the plan's
        assert c["extra"]["eval_ms_per_step"] == pytest.approx(1000 * c["extra"]["eval_seconds"] / steps)
        assert 0 < c["extra"]["eval_seconds"] == json.loads((root / c["run"] / "cell.json").read_text())["eval_seconds"]
        fits = json.loads((root / c["run"] / "setup_cost.json").read_text())  # outside the equal budget, recorded
        assert c["extra"]["setup_seconds"] == pytest.approx(sum(f["wall_s"] for f in fits.values()))
        recorded = json.loads((root / c["run"] / "runtime.json").read_text())  # where and in what arithmetic it trained
        assert c["runtime"] == {k: recorded[k] for k in ("device", "precision", "torch")}
    assert (cells["repr"]["paradigm"], cells["repr"]["init"], cells["repr"]["video_weight"]) == ("representation", "pretrained", 1.0)
    assert (cells["baseline"]["init"], cells["baseline"]["video_weight"]) == ("scratch", 0.0)
    # the scratch variant shares the world model's tokenizer and backbone shape; only the weights differ
    saved = yaml.safe_load((root / "cells/baseline__d1__s0/config.yaml").read_text())
    assert saved["init"] == "" and saved["tokenizer"]["path"] == str(root / "pretrain/tokenizer")
    assert saved["policy"]["backbone"]["depth"] == 2 and saved["data"]["episodes_per_task"] == 1
    assert (root / "report.html").exists() and (root / "report.md").exists() and (root / "study.yaml").exists()
    assert (root / "data/meta/info.json").exists() and (root / "pretrain/checkpoints/last").exists()


def test_world_model_pretrained_on_the_video_pool_and_what_each_arm_saw(finished):
    cfg, root, summary = finished
    pre = yaml.safe_load((root / "pretrain/config.yaml").read_text())
    assert pre["data"]["path"] == str(root / "video") and pre["model"]["action_chunk"] == 0
    pool = LeRobotDataset(root / "video")
    assert sorted({e.extras["env_task"] for e in pool.episodes}) == ["button-press-topdown-v3", "drawer-close-v3",
                                                                     "reach-v3"]
    assert min(int(e.extras["seed"]) for e in pool.episodes) >= 1000  # its own scenes, not the demos'
    seen = summary["data"]
    assert seen["video"]["path"] == str(root / "video") and seen["video"]["reads_actions"] is False
    assert seen["video"]["episodes_per_task"] == {"button-press-topdown-v3": 1, "drawer-close-v3": 1, "reach-v3": 1}
    assert seen["labelled"]["path"] == str(root / "data") and seen["labelled"]["reads_actions"] is True
    assert seen["labelled"]["tasks"] == ["button-press-topdown-v3", "reach-v3"]
    cell_split = json.loads((root / "cells/repr__d1__s0/split.json").read_text())["train"]
    assert seen["labelled"]["per_demos"]["1"]["episodes"] == len(cell_split) == 2
    assert "world model pretrained" in seen["arms"]["repr"] and "labelled demos only" in seen["arms"]["baseline"]
    report = (root / "report.md").read_text()  # the report says it too
    assert f"the world model pretrained on {root / 'video'} (3 episodes of 3 tasks, without actions)" in report
    assert "1 a task = 2 episodes" in report and "baseline: labelled demos only" in report


def test_second_run_skips_finished_cells(finished, monkeypatch):
    cfg, root, summary = finished
    calls = []
    for name in ("train_policy", "evaluate", "collect", "pretrain"):
        monkeypatch.setattr(study_module, name, lambda *a, _n=name, **k: calls.append(_n))
    again = run_study(load_study(str(root / "study.yaml")), progress=False)
    assert calls == [] and again["cells"] == summary["cells"]
    more = load_study(str(root / "study.yaml"), ["--seeds=0,1"])  # the dry run counts what is left to run
    lines = study_module.dry_run(more)
    assert f"finished already in {root}: 2 cells; to run: 2 cells" in "\n".join(lines)


def test_a_run_over_part_of_the_grid_keeps_the_other_finished_cells(finished, monkeypatch, tmp_path):
    """Resuming with fewer variants (or demos, seeds) runs only those, and the summary still holds every finished
    cell of the folder (it was rewritten with the subset's cells alone)."""
    cfg, root, summary = finished
    shutil.copytree(root, tmp_path / "s")
    for name in ("train_policy", "evaluate", "collect", "pretrain"):
        monkeypatch.setattr(study_module, name, lambda *a, **k: pytest.fail("a finished cell was rerun"))
    part = run_study(tiny_study(tmp_path / "s", variants=[VARIANTS[1]]), progress=False)
    assert (part["planned_cells"], part["planned_cells_done"], part["earlier_cells"]) == (1, 1, 1)
    assert sorted(c["variant"] for c in part["cells"]) == ["baseline", "repr"]
    assert "repr" in (tmp_path / "s" / "report.md").read_text()


@pytest.mark.slow  # ~50 s on 2 busy cores: two spawned processes, each training and evaluating in Meta-World
def test_cells_side_by_side(finished, tmp_path):
    cfg, root, summary = finished
    shutil.copytree(root, tmp_path / "s", ignore=shutil.ignore_patterns("cells"))  # data, video, world model, rates
    again = run_study(tiny_study(tmp_path / "s", parallel=2), progress=False)  # both cells at once, 2 processes
    cells = {c["variant"]: c for c in again["cells"]}
    assert set(cells) == {"repr", "baseline"}
    for name, c in cells.items():  # trained with the study's steps, evaluated, each in its own process
        assert c["steps"] == max(1, round(0.3 * summary["samples_per_s"][name] / 4)) and c["episodes"] == 2
        log = (tmp_path / "s" / c["run"] / "log.csv").read_text()
        assert (tmp_path / "s" / c["run"] / "eval/eval_info.json").exists() and log.count("\n") >= 2


def test_side_by_side_keeps_at_most_parallel_cells_running(tmp_path, monkeypatch):
    """The scheduling of `parallel` (fast: threads stand in for the processes, a stub for the cell)."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    class Pool(ThreadPoolExecutor):
        def __init__(self, n, mp_context=None, initializer=None, initargs=()):
            super().__init__(n + 2)  # room for more: the cap must come from the study

    lock, now, peak, order = threading.Lock(), [0], [0], []

    def cell(cfg, c, *args):
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.05)
        with lock:
            now[0] -= 1
        if c.seed == 99:
            raise RuntimeError("cell failed")

    monkeypatch.setattr(study_module, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(study_module, "run_cell", cell)
    cfg = tiny_study(tmp_path, parallel=2, seeds=[0, 1, 2], demos=[1])
    todo = list(enumerate(study_module.plan_cells(cfg), 1))  # 6 cells
    study_module.run_side_by_side(cfg, todo, lambda i, c: ((cfg, c), 0.0), lambda i, c, t0: order.append(i))
    assert sorted(order) == [1, 2, 3, 4, 5, 6] and peak[0] == 2
    bad = [(1, study_module.Cell(cfg.variants[0], 1, 99))]
    with pytest.raises(RuntimeError, match="cell failed"):  # a cell's error stops the study
        study_module.run_side_by_side(cfg, bad, lambda i, c: ((cfg, c), 0.0), lambda *a: None)


def test_interrupted_cell_resumes_without_retraining(finished, monkeypatch):
    cfg, root, _ = finished
    info = root / "cells/baseline__d1__s0/eval/eval_info.json"
    saved = info.read_text()
    info.unlink()  # as if killed during its evaluation: trained (cell.json says so), not evaluated
    trained, evaluated = [], []
    monkeypatch.setattr(study_module, "train_policy", lambda *a, **k: trained.append(1))
    monkeypatch.setattr(study_module, "evaluate", lambda c, **k: evaluated.append(c.policy) or info.write_text(saved))
    summary = run_study(cfg, progress=False)
    assert trained == [] and evaluated == [str(root / "cells/baseline__d1__s0")] and len(summary["cells"]) == 2


def test_offline_evaluation_added_to_a_finished_study(finished, tmp_path, monkeypatch):
    cfg, root, _ = finished
    shutil.copytree(root, tmp_path / "s")
    calls = []
    for name in ("train_policy", "evaluate", "collect", "pretrain"):
        monkeypatch.setattr(study_module, name, lambda *a, _n=name, **k: calls.append(_n))
    more = tiny_study(tmp_path / "s", **{"offline.enabled": True, "offline.swap": True})
    cells = {c["variant"]: c for c in run_study(more, progress=False)["cells"]}
    assert calls == []  # nothing trained or evaluated in the simulator again
    for c in cells.values():
        extra = c["extra"]
        assert extra["offline_mse_imagined"] >= 0 and len(extra["offline_mse_imagined_ci95"]) == 2
        assert "swap_action_margin" in extra and "offline_real_minus_imagined" not in extra  # neither acts from a future
        assert (tmp_path / "s" / c["run"] / "eval_offline.json").exists()


def test_paraphrase_evaluations_added_to_a_finished_study(finished, tmp_path, monkeypatch):
    """extra_paraphrases adds evaluations to finished cells (as offline does): nothing retrained."""
    cfg, root, _ = finished
    shutil.copytree(root, tmp_path / "s")
    calls = []
    monkeypatch.setattr(study_module, "train_policy", lambda *a, **k: pytest.fail("a finished cell was retrained"))
    monkeypatch.setattr(study_module, "evaluate", lambda c, **k: calls.append((Path(c.policy).name, c.paraphrase)))
    run_study(tiny_study(tmp_path / "s", extra_paraphrases=[1]), progress=False)
    assert sorted(calls) == sorted((Path(c.run).name, 1) for c in study_module.plan_cells(cfg))


def test_offline_metrics_of_a_cell(tmp_path):
    from wam.study import offline_metrics

    assert offline_metrics(tmp_path / "missing.json") == {}
    (tmp_path / "o.json").write_text(json.dumps({
        "given_future": "real", "mse": 0.01, "ci95": [0.0, 0.02], "imagined_mse": 0.03, "imagined_ci95": [0.02, 0.04],
        "real_minus_imagined": -0.02, "real_minus_imagined_ci95": [-0.03, -0.01],
        "per_task": {"a": {"mse": 0.01, "video_only": False}, "b": {"mse": 1.0, "video_only": True},
                     "c": {"mse": 0.5, "video_only": True}}}))
    m = offline_metrics(tmp_path / "o.json")
    assert m["offline_mse_real"] == 0.01 and m["offline_mse_imagined_ci95"] == [0.02, 0.04]
    assert m["offline_real_minus_imagined"] == -0.02 and m["offline_mse_video_only_tasks"] == 0.75
    assert "swap_action_margin" not in m


def test_episodes_per_task_limits_training_episodes(tmp_path):
    write_dataset(tmp_path / "d", lengths=(20,) * 8)  # 2 tasks x 4 episodes
    ds = LeRobotDataset(tmp_path / "d")
    all_train, val = split_episodes(ds, 0.25)
    few, val_few = split_episodes(ds, 0.25, per_task=2)
    assert all_train == [0, 1, 2, 3, 4, 5] and val == [6, 7] and val_few == val
    assert few == [0, 1, 2, 3]  # the first 2 training episodes of each task (tasks alternate)
    with pytest.raises(ConfigError, match="only 3 training episodes"):
        split_episodes(ds, 0.25, per_task=4)


def test_data_tasks_keeps_only_the_named_tasks(tmp_path):
    write_dataset(tmp_path / "d", lengths=(20,) * 9, tasks=("a", "b", "c"),
                  env_tasks=("reach-v3", "push-v3", "door-open-v3"))  # 3 tasks x 3 episodes
    ds = LeRobotDataset(tmp_path / "d")
    train_eps, val_eps = split_episodes(ds, 0.3, tasks="reach,door-open")
    assert train_eps == [0, 2, 3, 5] and val_eps == [6, 8]  # push's episodes 1, 4, 7 are left out
    assert trained_tasks(ds, "door-open-v3,reach") == ["door-open-v3", "reach-v3"]
    with pytest.raises(ConfigError, match="data.tasks names pick-place-v3"):
        split_episodes(ds, 0.3, tasks="reach,pick-place")


def test_bad_study_configs_are_refused(tmp_path):
    def refused(match: str, **extra):
        with pytest.raises(ConfigError, match=match):
            tiny_study(tmp_path / "x", **extra).check()

    refused("variant 'magic'.*choose one of", variants=[{"name": "magic", "paradigm": "magic"}])
    refused("demos must be a non-empty list", demos=[])
    refused(r"demos 5 per task, but data.collect.episodes=2 leaves 1", demos=[1, 5])
    refused("used 2 times", variants=[{"paradigm": "joint"}, {"paradigm": "joint"}])
    refused("init must be one of", variants=[{"paradigm": "joint", "init": "imagenet"}])
    refused("outside reference policy: it trains from scratch", variants=[{"paradigm": "conv_reference"}])
    tiny_study(tmp_path / "x", variants=[{"paradigm": "conv_reference", "init": "scratch"}]).check()  # accepted
    refused("optim.steps is set by the study", variants=[{"paradigm": "joint", "overrides": {"optim": {"steps": 9}}}])
    refused("unknown option 'policy.video_wieght'", variants=[{"paradigm": "joint", "overrides": {"policy.video_wieght": 0}}])
    refused("exactly one of budget.steps", **{"budget.steps": 10})
    refused("rate_of names 'jointt'", variants=[{"paradigm": "joint"}, {"name": "j0", "paradigm": "joint", "rate_of": "jointt"}])
    refused("steps_of names 'jj'; it must be another variant", variants=[{"paradigm": "joint"},
                                                                      {"name": "j2", "paradigm": "joint", "steps_of": "jj"}])
    refused("steps_of names 'j2'", variants=[{"name": "j2", "paradigm": "joint", "steps_of": "j2"}])  # itself
    refused("steps_of names 'j2'", variants=[{"name": "j1", "paradigm": "joint"},  # a chain
                                              {"name": "j2", "paradigm": "joint", "steps_of": "j1"},
                                              {"name": "j3", "paradigm": "joint", "steps_of": "j2"}])
    refused("cannot go with rate_of", variants=[{"name": "j1", "paradigm": "joint"},
                                                {"name": "j2", "paradigm": "joint", "steps_of": "j1", "rate_of": "j1"}])
    refused("--paraphrase must be -1", extra_paraphrases=[7])
    with pytest.raises(ConfigError, match="unknown key"):
        tiny_study(tmp_path / "x", variants=[{"paradigm": "joint", "weights": 2}])
    write_dataset(tmp_path / "d", lengths=(20,) * 6)
    with pytest.raises(ConfigError, match=r"demos 3 per task, but .* holds 3 episodes of task0 \(1 for training"):
        run_study(tiny_study(tmp_path / "y", demos=[3], **{"data.path": str(tmp_path / "d")}), progress=False)
    hidden = [{"paradigm": "joint"}, {"name": "more", "paradigm": "joint", "overrides": {"data.actionless_per_task": 2}}]
    with pytest.raises(ConfigError, match=r"demos 1 \+ 2 without actions .* per task, but .* \(1 for training"):
        run_study(tiny_study(tmp_path / "z", demos=[1], variants=hidden, **{"data.path": str(tmp_path / "d")}),
                  progress=False)


def test_a_variant_with_rate_of_trains_at_the_other_variant_s_measured_rate(tmp_path, monkeypatch):
    cfg = tiny_study(tmp_path / "r", variants=[
        {"name": "j0", "paradigm": "joint", "rate_of": "j", "overrides": {"policy.video_weight": 0}},
        {"name": "j", "paradigm": "joint"}, {"name": "a", "paradigm": "action_only", "init": "scratch"}])
    cfg.check()
    measured = []
    monkeypatch.setattr(study_module, "cell_config", lambda c, v, *a: measured.append(v.name) or 1 / 0)
    root = tmp_path / "r"
    root.mkdir()
    (root / "rates.json").write_text(json.dumps({"j": 12.5, "a": 40.0, "j0": 99.0}))  # j0: an old measurement
    rates = study_module.measure_rates(cfg, root, tmp_path / "wm", tmp_path / "data")
    assert measured == [] and rates == {"j": 12.5, "a": 40.0, "j0": 12.5}
    assert study_module.cell_steps(cfg, cfg.variants[0], rates) == study_module.cell_steps(cfg, cfg.variants[1], rates)


def test_a_variant_with_steps_of_trains_the_other_variant_s_steps_at_its_own_measured_rate(tmp_path, monkeypatch):
    """Equal steps, not equal CPU: the arm's own rate is measured (the plan prints what its steps cost), its steps
    are those of the variant it names."""
    cfg = tiny_study(tmp_path / "q", variants=[
        {"name": "a", "paradigm": "action_only", "init": "scratch"},
        {"name": "j", "paradigm": "joint", "steps_of": "a"}, {"name": "j_cpu", "paradigm": "joint", "rate_of": "j"}])
    cfg.check()
    root = tmp_path / "q"
    root.mkdir()
    (root / "rates.json").write_text(json.dumps({"a": 40.0, "j": 10.0}))
    rates = study_module.measure_rates(cfg, root, tmp_path / "wm", tmp_path / "data")
    a, j, j_cpu = (study_module.cell_steps(cfg, v, rates) for v in cfg.variants)
    assert j == a == max(1, round(0.3 * 40.0 / 4)) and j_cpu == max(1, round(0.3 * 10.0 / 4)) and j_cpu < j


def test_measuring_a_rate_skips_the_fits_a_training_step_does_not_depend_on(tmp_path, monkeypatch):
    """A keypoint arm's detector (~15 CPU-min) and its labels' inverse dynamics are fitted before training and read
    as precomputed positions and actions: the rate measurement fits them for one step each, nothing else changes."""
    kp = {"policy.keypoints.targets": "hand", "data.actionless_actions": "inverse_dynamics", "optim.batch_size": 4}
    cfg = tiny_study(tmp_path / "k", variants=[{"name": "kp", "paradigm": "action_only", "init": "scratch",
                                                "overrides": kp}, {"name": "a", "paradigm": "action_only",
                                                                   "init": "scratch"}])
    trained = {}

    def fake_train(tc, progress):
        trained[tc.out] = tc
        Path(tc.out).mkdir(parents=True)
        Path(tc.out, "log.csv").write_text("step,samples_per_s\n3,10\n4,14\n5,12\n")

    monkeypatch.setattr(study_module, "cell_config",
                        lambda c, v, d, s, steps, wm, data, out: replace(apply_overrides(TrainConfig(), v.overrides),
                                                                         out=str(out)))
    monkeypatch.setattr(study_module, "train_policy", fake_train)
    root = tmp_path / "k"
    root.mkdir()
    assert study_module.measure_rates(cfg, root, tmp_path / "wm", tmp_path / "data") == {"kp": 12.0, "a": 12.0}
    quick, plain = trained[str(root / "rates" / "kp")], trained[str(root / "rates" / "a")]
    assert (quick.policy.keypoints.steps, quick.labels.steps, quick.optim.batch_size) == (1, 1, 4)
    assert plain.policy.keypoints == TrainConfig().policy.keypoints and plain.labels == TrainConfig().labels


def test_resuming_with_other_settings_is_refused(finished):
    _, root, _ = finished
    with pytest.raises(ConfigError, match="other settings .*pretrain.optim.steps"):
        run_study(tiny_study(root, **{"pretrain.optim.steps": 7}), progress=False)


def test_named_studies_load(tmp_path):
    names = sorted(p.stem for p in study_module.STUDIES.glob("*.yaml"))
    assert {"future_helps_acting", "language_grounding", "cotraining_regularizes", "imagination_at_test_time",
            "video_only_tasks"} <= set(names)
    for name in names:
        cfg = load_study(name, ["--eval.episodes=3"])
        cfg.check()
        assert cfg.eval.episodes == 3 and cfg.question and len(cfg.variants) >= 2
    assert load_study("language_grounding").eval.paraphrase == 0
    with pytest.raises(ConfigError, match="no study config 'nope'.*future_helps_acting"):
        load_study("nope")


def test_quickstart_config_and_summary():
    cfg = parse_quickstart({"out": "somewhere", "eval.episodes": "3"})
    assert cfg.out == "somewhere" and cfg.eval.episodes == 3 and [v.paradigm for v in cfg.variants] == [
        "representation", "action_only"]
    assert cfg.data.collect.image_size == 64 and cfg.budget.cpu_seconds > 0 and not cfg.budget.steps
    cell = {"variant": "representation", "init": "pretrained", "success": 0.5, "ci95": [0.2, 0.8], "episodes": 30,
            "ms_per_chunk": 12.0, "steps": 300, "train_seconds": 120.0}
    text = five_lines(cfg, {"cells": [cell, {**cell, "variant": "action_only"}]}, "somewhere/report.html")
    assert len(text.splitlines()) == 5 and "success 0.50 [0.20, 0.80]" in text


def test_eval_paraphrase_option():
    assert task_instruction("reach", -1) != task_instruction("reach", 0) == paraphrases("reach-v3")[0]
    with pytest.raises(ConfigError, match="--paraphrase"):
        EvalConfig(policy="p", paraphrase=4).check()


def test_only_an_outside_reference_sets_its_own_image_size(finished, tmp_path):
    """The conv reference reads pixels, so a study may give it another frame size than the world model's (whose
    latents every WAM cell reads, at the world model's size)."""
    from wam.study import cell_config
    from wam.study_plan import _sees

    cfg, root, _ = finished
    args = (1, 0, 5, root / "pretrain", root / "data", tmp_path / "c")
    big = VariantSpec.parse({"name": "conv48", "paradigm": "conv_reference", "init": "scratch",
                             "overrides": {"data": {"image_size": 48}}}, 0)
    big.check()
    assert cell_config(cfg, big, *args).data.image_size == 48
    assert "pixels at 48 px" in _sees(cfg, big)  # the dry run and summary.json say it
    assert cell_config(cfg, VariantSpec.parse("action_only", 1), *args).data.image_size == cfg.pretrain.data.image_size != 48
    with pytest.raises(ConfigError, match="only an outside reference"):
        VariantSpec.parse({"paradigm": "joint", "overrides": {"data.image_size": 48}}, 0).check()


def test_an_arm_trained_on_positions_says_so():
    """An arm with `policy.aux.targets` saw the labelled demos' recorded positions: the dry run and summary.json
    say it beside what else the arm saw."""
    from wam.study_plan import _sees

    aux = VariantSpec.parse({"name": "repr_aux", "paradigm": "representation", "init": "pretrained",
                             "overrides": {"policy.aux.targets": "object,goal"}}, 0)
    aux.check()
    assert "object,goal positions as training targets" in _sees(None, aux)
    assert "positions" not in _sees(None, VariantSpec.parse("representation", 0))
    more = VariantSpec.parse({"name": "ao", "paradigm": "action_only", "init": "scratch", "overrides": {
        "policy.aux.targets": "object", "data.actionless_per_task": -1}}, 0)
    assert "all the other training episodes a task with actions hidden (their recorded positions" in _sees(None, more)
    assert "only" not in _sees(None, more) and "labelled demos only" in _sees(None, VariantSpec.parse("action_only", 0))
    inferred = VariantSpec.parse({"name": "ao_idm", "paradigm": "action_only", "init": "scratch", "overrides": {
        "policy.keypoints.targets": "hand,object", "data.actionless_per_task": 3,
        "data.actionless_actions": "inverse_dynamics"}}, 0)
    assert "3 more training episodes a task with actions inferred from their video" in _sees(None, inferred)
    assert "policy.aux" not in _sees(None, inferred)  # the detector learns from the labelled demos only
    video = VariantSpec.parse({"name": "ao_vo", "paradigm": "action_only", "init": "scratch", "overrides": {
        "policy.keypoints.targets": "hand", "data.video_only_tasks": "window-open",
        "data.actionless_actions": "inverse_dynamics"}}, 0)
    assert "the episodes of window-open (tasks seen only as video) with actions inferred" in _sees(None, video)
    assert "labelled demos only" not in _sees(None, video)
