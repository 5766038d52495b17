"""Tests of the Meta-World v3 task catalogue in wam.data.tasks."""

import os
import re
import subprocess
import sys

import pytest

from wam.data import tasks
from wam.errors import ConfigError


def _normalized(text: str) -> str:
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


def test_names_match_metaworld() -> None:
    env_dict = pytest.importorskip("metaworld.env_dict")
    assert tasks.ALL_TASKS == tuple(env_dict.ALL_V3_ENVIRONMENTS)
    assert tasks.SUITES["mt10"] == tuple(env_dict.MT10_V3)
    assert tasks.SUITES["mt50"] == tasks.ALL_TASKS


def test_import_does_not_load_simulator() -> None:
    code = "import sys, wam.data.tasks; print('metaworld' in sys.modules, 'mujoco' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == ["False", "False"]


def test_suites_hold_known_tasks_once() -> None:
    assert len(tasks.ALL_TASKS) == 50 == len(set(tasks.ALL_TASKS))
    sizes = {"mt10": 10, "mt50": 50, "avdc11": 11, "mw5": 5}
    for name, suite in tasks.SUITES.items():
        assert len(suite) == len(set(suite)), name
        assert set(suite) <= set(tasks.ALL_TASKS), name
        if name in sizes:
            assert len(suite) == sizes[name], name


def test_difficulty_covers_every_task_once() -> None:
    levels = ("easy", "medium", "hard", "very_hard")
    assert [len(tasks.SUITES[level]) for level in levels] == [28, 11, 6, 5]
    assert sum(len(tasks.SUITES[level]) for level in levels) == 50
    assert set(tasks.DIFFICULTY) == set(tasks.ALL_TASKS)
    for level in levels:
        tagged = {task for task, tag in tasks.DIFFICULTY.items() if tag == level}
        assert tagged == set(tasks.SUITES[level])
    assert tasks.DIFFICULTY["reach-v3"] == "easy"
    assert tasks.DIFFICULTY["stick-pull-v3"] == "very_hard"


def test_language_is_complete_and_distinct() -> None:
    assert set(tasks.INSTRUCTIONS) == set(tasks.ALL_TASKS)
    assert set(tasks.PARAPHRASES) == set(tasks.ALL_TASKS)
    texts: list[str] = []
    for task in tasks.ALL_TASKS:
        assert len(tasks.PARAPHRASES[task]) == 4, task
        texts.append(tasks.INSTRUCTIONS[task])
        texts.extend(tasks.PARAPHRASES[task])
    assert all(isinstance(text, str) and text.strip() == text and text for text in texts)
    normalized = [_normalized(text) for text in texts]
    duplicates = {text for text in normalized if normalized.count(text) > 1}
    assert not duplicates
    assert len(texts) == 250


def test_instruction_and_paraphrases_accept_short_names() -> None:
    assert tasks.instruction("reach") == tasks.INSTRUCTIONS["reach-v3"]
    assert tasks.instruction("reach-v3") == tasks.INSTRUCTIONS["reach-v3"]
    assert tasks.paraphrases("push") == tasks.PARAPHRASES["push-v3"]
    with pytest.raises(ConfigError, match="pushh"):
        tasks.instruction("pushh")
    with pytest.raises(ConfigError):
        tasks.paraphrases("mt10")


def test_resolve_suite() -> None:
    assert tasks.resolve_tasks("mt10") == list(tasks.SUITES["mt10"])
    assert tasks.resolve_tasks("very_hard") == list(tasks.SUITES["very_hard"])


def test_resolve_comma_list_and_short_names() -> None:
    assert tasks.resolve_tasks("reach-v3,push-v3") == ["reach-v3", "push-v3"]
    assert tasks.resolve_tasks(" reach , pick-place-v3 ") == ["reach-v3", "pick-place-v3"]
    resolved = tasks.resolve_tasks(["door-open", "drawer-close-v3"])
    assert resolved == ["door-open-v3", "drawer-close-v3"]


def test_resolve_removes_duplicates_in_order() -> None:
    assert tasks.resolve_tasks("push,reach-v3,push-v3,reach") == ["push-v3", "reach-v3"]
    mixed = tasks.resolve_tasks(["pick-place", "mw5"])
    assert mixed[0] == "pick-place-v3"
    assert sorted(mixed) == sorted(tasks.SUITES["mw5"])


def test_unknown_name_names_token_suites_and_suggestion() -> None:
    with pytest.raises(ConfigError) as caught:
        tasks.resolve_tasks("reach,pick-plac")
    message = str(caught.value)
    assert "pick-plac" in message
    assert "pick-place-v3" in message
    assert "mt10" in message and "very_hard" in message


@pytest.mark.parametrize("spec", ["", "  ", ",", [], [" "]])
def test_empty_spec_errors(spec: str | list[str]) -> None:
    with pytest.raises(ConfigError):
        tasks.resolve_tasks(spec)
