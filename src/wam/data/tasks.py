"""The Meta-World v3 task catalogue: task names, suites, difficulty levels and language.

Every task has one imperative English instruction (used for training and evaluation) and four
held-out paraphrases (used only to test language following, never for training). Names are
hard-coded so that importing this module does not import metaworld or mujoco; a test checks
them against `metaworld.env_dict`.
"""

import difflib
from collections.abc import Sequence
from typing import Any

from wam.data.task_language import LANGUAGE
from wam.errors import ConfigError

_SUFFIX = "-v3"

# Order of `metaworld.env_dict.ALL_V3_ENVIRONMENTS` (metaworld 3.1.1).
ALL_TASKS: tuple[str, ...] = (
    "assembly-v3",
    "basketball-v3",
    "bin-picking-v3",
    "box-close-v3",
    "button-press-topdown-v3",
    "button-press-topdown-wall-v3",
    "button-press-v3",
    "button-press-wall-v3",
    "coffee-button-v3",
    "coffee-pull-v3",
    "coffee-push-v3",
    "dial-turn-v3",
    "disassemble-v3",
    "door-close-v3",
    "door-lock-v3",
    "door-open-v3",
    "door-unlock-v3",
    "hand-insert-v3",
    "drawer-close-v3",
    "drawer-open-v3",
    "faucet-open-v3",
    "faucet-close-v3",
    "hammer-v3",
    "handle-press-side-v3",
    "handle-press-v3",
    "handle-pull-side-v3",
    "handle-pull-v3",
    "lever-pull-v3",
    "pick-place-wall-v3",
    "pick-out-of-hole-v3",
    "pick-place-v3",
    "plate-slide-v3",
    "plate-slide-side-v3",
    "plate-slide-back-v3",
    "plate-slide-back-side-v3",
    "peg-insert-side-v3",
    "peg-unplug-side-v3",
    "soccer-v3",
    "stick-push-v3",
    "stick-pull-v3",
    "push-v3",
    "push-wall-v3",
    "push-back-v3",
    "reach-v3",
    "reach-wall-v3",
    "shelf-place-v3",
    "sweep-into-v3",
    "sweep-v3",
    "window-open-v3",
    "window-close-v3",
)

# Difficulty split of Seo et al. 2022, "Masked World Models for Visual Control" (appendix), as
# reused by later work (PAD, VPP). Checked against two independent code copies of the split: the
# DIFFICULTY_TO_TASKS table of LeRobot (huggingface/lerobot, src/lerobot/envs/metaworld_config.json)
# and the TASKLIST_easy/medium/hard/veryhard lists of a public Meta-World diffusion-policy dataset
# loader; both agree task for task (28/11/6/5). The paper's own table was not read directly.
SUITES: dict[str, tuple[str, ...]] = {
    "mt10": (
        "reach-v3",
        "push-v3",
        "pick-place-v3",
        "door-open-v3",
        "drawer-open-v3",
        "drawer-close-v3",
        "button-press-topdown-v3",
        "peg-insert-side-v3",
        "window-open-v3",
        "window-close-v3",
    ),
    "mt50": ALL_TASKS,
    "avdc11": (
        "door-open-v3",
        "door-close-v3",
        "basketball-v3",
        "shelf-place-v3",
        "button-press-v3",
        "button-press-topdown-v3",
        "faucet-close-v3",
        "faucet-open-v3",
        "handle-press-v3",
        "hammer-v3",
        "assembly-v3",
    ),
    "mw5": (
        "reach-v3",
        "button-press-topdown-v3",
        "drawer-open-v3",
        "push-v3",
        "pick-place-v3",
    ),
    "easy": (
        "button-press-v3",
        "button-press-topdown-v3",
        "button-press-topdown-wall-v3",
        "button-press-wall-v3",
        "coffee-button-v3",
        "dial-turn-v3",
        "door-close-v3",
        "door-lock-v3",
        "door-open-v3",
        "door-unlock-v3",
        "drawer-close-v3",
        "drawer-open-v3",
        "faucet-close-v3",
        "faucet-open-v3",
        "handle-press-v3",
        "handle-press-side-v3",
        "handle-pull-v3",
        "handle-pull-side-v3",
        "lever-pull-v3",
        "plate-slide-v3",
        "plate-slide-back-v3",
        "plate-slide-back-side-v3",
        "plate-slide-side-v3",
        "reach-v3",
        "reach-wall-v3",
        "window-close-v3",
        "window-open-v3",
        "peg-unplug-side-v3",
    ),
    "medium": (
        "basketball-v3",
        "bin-picking-v3",
        "box-close-v3",
        "coffee-pull-v3",
        "coffee-push-v3",
        "hammer-v3",
        "peg-insert-side-v3",
        "push-wall-v3",
        "soccer-v3",
        "sweep-v3",
        "sweep-into-v3",
    ),
    "hard": (
        "assembly-v3",
        "hand-insert-v3",
        "pick-out-of-hole-v3",
        "pick-place-v3",
        "push-v3",
        "push-back-v3",
    ),
    "very_hard": (
        "shelf-place-v3",
        "disassemble-v3",
        "stick-pull-v3",
        "stick-push-v3",
        "pick-place-wall-v3",
    ),
}

DIFFICULTY: dict[str, str] = {
    task: level
    for level in ("easy", "medium", "hard", "very_hard")
    for task in SUITES[level]
}

INSTRUCTIONS: dict[str, str] = {task: LANGUAGE[task][0] for task in ALL_TASKS}

# Held out for tests of language following: never used for training.
PARAPHRASES: dict[str, tuple[str, ...]] = {task: LANGUAGE[task][1:] for task in ALL_TASKS}


def _unknown(token: str) -> ConfigError:
    """The error for a name that is neither a task nor a suite, with the closest task names."""
    full = token if token.endswith(_SUFFIX) else token + _SUFFIX
    close = difflib.get_close_matches(full, ALL_TASKS, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(name) for name in close)}?" if close else ""
    return ConfigError(
        f"unknown Meta-World task {token!r}.{hint} Valid suites: {', '.join(SUITES)};"
        f" task names look like 'reach-v3' (the '-v3' may be left out)."
    )


def _canonical(name: str) -> str:
    """The canonical task name ('reach' -> 'reach-v3'); ConfigError if there is no such task."""
    token = name.strip().lower()
    full = token if token.endswith(_SUFFIX) else token + _SUFFIX
    if full not in INSTRUCTIONS:
        raise _unknown(token)
    return full


def resolve_tasks(spec: str | Sequence[str]) -> list[str]:
    """Task names from a suite name, a comma-separated string or a sequence of names.

    Names may omit the '-v3' suffix and suite names may appear among them; the result holds
    canonical names, each once, in the order given.
    """
    tokens = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [token.strip().lower() for token in tokens if token.strip()]
    if not names:
        raise ConfigError(
            f"empty task list {spec!r}: give a suite ({', '.join(SUITES)}) or task names"
            " such as 'reach-v3,push-v3'."
        )
    tasks: list[str] = []
    for name in names:
        tasks.extend(SUITES[name] if name in SUITES else (_canonical(name),))
    return list(dict.fromkeys(tasks))


def instruction(task: str) -> str:
    """The training instruction of a task (canonical or without '-v3')."""
    return INSTRUCTIONS[_canonical(task)]


def paraphrases(task: str) -> tuple[str, ...]:
    """The four held-out paraphrases of a task's instruction (canonical or without '-v3')."""
    return PARAPHRASES[_canonical(task)]


def episodes_by_task(ds: Any) -> dict[str, list[int]]:
    """Episode indices of each task of a LeRobotDataset: its Meta-World name where the dataset has it
    (`env_task`, written by `wam collect`), else the instruction."""
    by_task: dict[str, list[int]] = {}
    for e, ep in enumerate(ds.episodes):
        by_task.setdefault(str(ep.extras.get("env_task") or ds.episode_task(e)), []).append(e)
    return by_task
