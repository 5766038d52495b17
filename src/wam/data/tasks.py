"""The Meta-World v3 task catalogue: task names, suites, difficulty levels and language.

Every task has one imperative English instruction (used for training and evaluation) and four
held-out paraphrases (used only to test language following, never for training). Names are
hard-coded so that importing this module does not import metaworld or mujoco; a test checks
them against `metaworld.env_dict`.
"""

import difflib
from collections.abc import Sequence

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

# task -> (instruction, paraphrase, paraphrase, paraphrase, paraphrase), written from the
# environments' success conditions in metaworld/envs/*.py and the MT50 task descriptions.
_LANGUAGE: dict[str, tuple[str, str, str, str, str]] = {
    "assembly-v3": (
        "pick up the nut and place it onto the peg",
        "grab the nut by its handle and fit it over the peg",
        "put the nut on the peg",
        "lift the nut and slide it down around the peg",
        "assemble the nut onto the upright peg",
    ),
    "basketball-v3": (
        "pick up the ball and dunk it into the hoop",
        "grab the basketball and drop it through the hoop",
        "put the ball in the basket",
        "lift the ball and score it in the hoop",
        "slam dunk the basketball into the basket",
    ),
    "bin-picking-v3": (
        "pick up the puck from one bin and place it in the other bin",
        "transfer the puck into the second bin",
        "grab the puck out of its bin and drop it into the empty bin",
        "move the puck over to the other bin",
        "take the puck from the first bin and put it in the neighbouring bin",
    ),
    "box-close-v3": (
        "pick up the lid and put it on the box",
        "close the box with its lid",
        "grab the cover and place it on top of the box",
        "lift the lid and set it onto the box to close it",
        "put the cover on the box",
    ),
    "button-press-topdown-v3": (
        "press the button down from above",
        "push the button from the top",
        "push down on the button from overhead",
        "press down on the top of the button",
        "reach above the button and push it down",
    ),
    "button-press-topdown-wall-v3": (
        "press the button down from above without hitting the wall",
        "push the button from the top while avoiding the wall",
        "get past the wall and push down on the button",
        "press down on the button behind the wall from overhead",
        "avoid the wall and press the button downward from the top",
    ),
    "button-press-v3": (
        "push the button in from the front",
        "press the button straight ahead",
        "press the button that faces you",
        "push in the front button",
        "poke the button forward until it goes in",
    ),
    "button-press-wall-v3": (
        "reach around the wall and push the button in from the front",
        "get past the wall and press the button straight ahead",
        "avoid the wall and push in the front button",
        "press the button behind the wall",
        "go around the wall to push the button in",
    ),
    "coffee-button-v3": (
        "press the button on the coffee machine",
        "push the coffee machine's button",
        "start the coffee machine by pushing its button",
        "hit the button on the coffee maker",
        "press the coffee maker button",
    ),
    "coffee-pull-v3": (
        "pull the mug out from under the coffee machine",
        "slide the mug away from the coffee machine to the goal",
        "take the cup out from beneath the coffee maker",
        "drag the mug back from the coffee machine",
        "move the mug out from under the coffee maker",
    ),
    "coffee-push-v3": (
        "push the mug under the coffee machine",
        "slide the cup beneath the coffee maker",
        "move the mug into place under the coffee machine",
        "shove the mug under the coffee maker's spout",
        "put the mug under the coffee machine by pushing it",
    ),
    "dial-turn-v3": (
        "rotate the dial half a turn",
        "turn the dial around by 180 degrees",
        "spin the knob halfway around",
        "twist the dial through half a rotation",
        "turn the dial until it points the other way",
    ),
    "disassemble-v3": (
        "lift the nut off the peg",
        "pull the nut up and away from the peg",
        "take the nut off the peg",
        "grab the nut by its handle and remove it from the peg",
        "disassemble the nut from the peg",
    ),
    "door-close-v3": (
        "close the door",
        "swing the door shut",
        "push the door closed",
        "shut the door",
        "move the door back to its closed position",
    ),
    "door-lock-v3": (
        "lock the door by turning the lock down",
        "turn the door's lock to the locked position",
        "rotate the lock on the door downward",
        "lock the door",
        "twist the door lock until it is locked",
    ),
    "door-open-v3": (
        "open the door",
        "swing the door open",
        "pull the door open by its handle",
        "open up the door",
        "grab the door handle and open the door",
    ),
    "door-unlock-v3": (
        "unlock the door by turning the lock",
        "turn the door's lock to the unlocked position",
        "rotate the lock on the door to release it",
        "unlock the door",
        "twist the door lock until it is unlocked",
    ),
    "hand-insert-v3": (
        "pick up the block and drop it into the hole in the table",
        "put the block in the hole in the table",
        "grab the block and lower it into the hole",
        "insert the block into the opening in the table",
        "take the block and place it down inside the hole",
    ),
    "drawer-close-v3": (
        "close the drawer",
        "push the drawer shut",
        "slide the drawer closed",
        "shut the drawer",
        "push the drawer all the way in",
    ),
    "drawer-open-v3": (
        "open the drawer",
        "pull the drawer open",
        "slide the drawer out",
        "pull out the drawer by its handle",
        "open up the drawer",
    ),
    "faucet-open-v3": (
        "turn on the faucet",
        "open the faucet",
        "rotate the faucet handle counter-clockwise",
        "swing the tap handle to turn the water on",
        "open the tap",
    ),
    "faucet-close-v3": (
        "turn off the faucet",
        "close the faucet",
        "rotate the faucet handle clockwise",
        "swing the tap handle to turn the water off",
        "close the tap",
    ),
    "hammer-v3": (
        "pick up the hammer and drive the nail into the wall",
        "use the hammer to knock the nail in",
        "grab the hammer and hit the nail on the wall",
        "hammer the nail into the wall",
        "take the hammer and pound the nail flush with the wall",
    ),
    "handle-press-side-v3": (
        "press the handle down from the side",
        "push the side handle down",
        "push down on the handle from its side",
        "press down on the sideways handle",
        "lower the handle by pushing it from the side",
    ),
    "handle-press-v3": (
        "press the handle down",
        "push the handle down",
        "push down on the handle",
        "lower the handle",
        "press down on the handle until it stops",
    ),
    "handle-pull-side-v3": (
        "pull the handle up from the side",
        "lift the side handle up",
        "raise the handle from its side",
        "pull up on the sideways handle",
        "raise the handle by pulling it up from the side",
    ),
    "handle-pull-v3": (
        "pull the handle up",
        "lift the handle",
        "raise the handle",
        "pull up on the handle",
        "pull the handle upward until it stops",
    ),
    "lever-pull-v3": (
        "pull the lever up",
        "raise the lever",
        "lift the lever upward",
        "rotate the lever up by a quarter turn",
        "swing the lever up",
    ),
    "pick-place-wall-v3": (
        "pick up the puck, lift it over the wall and place it at the goal",
        "carry the puck over the wall to the goal",
        "grab the puck and move it past the wall to the target",
        "lift the puck across the wall and put it down at the goal",
        "take the puck over the wall and set it at the target spot",
    ),
    "pick-out-of-hole-v3": (
        "pick the puck up out of the hole",
        "lift the puck out of the hole",
        "take the puck out of the hole and raise it to the goal",
        "retrieve the puck from the hole",
        "grab the puck in the hole and lift it out",
    ),
    "pick-place-v3": (
        "pick up the puck and place it at the goal",
        "grab the puck and move it to the target",
        "lift the puck and put it down at the goal position",
        "carry the puck to the goal",
        "take the puck and set it at the target spot",
    ),
    "plate-slide-v3": (
        "slide the plate into the cabinet",
        "push the plate into the cabinet",
        "slide the plate to the goal inside the cabinet",
        "move the plate into the cabinet by sliding it",
        "shove the plate into the cabinet",
    ),
    "plate-slide-side-v3": (
        "slide the plate sideways into the cabinet",
        "push the plate into the cabinet from the side",
        "slide the plate in sideways",
        "move the plate sideways into the cabinet",
        "shove the plate into the cabinet from the side",
    ),
    "plate-slide-back-v3": (
        "slide the plate out of the cabinet",
        "pull the plate back out of the cabinet",
        "get the plate out of the cabinet",
        "slide the plate back toward you out of the cabinet",
        "retrieve the plate from the cabinet",
    ),
    "plate-slide-back-side-v3": (
        "slide the plate sideways out of the cabinet",
        "pull the plate out of the cabinet from the side",
        "get the plate out of the cabinet sideways",
        "slide the plate out to the side",
        "retrieve the plate from the cabinet sideways",
    ),
    "peg-insert-side-v3": (
        "insert the peg into the hole from the side",
        "pick up the peg and push it sideways into the hole",
        "slide the peg into the side hole",
        "grab the peg and fit it into the hole in the box",
        "put the peg in the hole sideways",
    ),
    "peg-unplug-side-v3": (
        "unplug the peg from the side hole",
        "pull the peg out of the hole sideways",
        "remove the peg from the side of the box",
        "grab the peg and slide it out of the hole",
        "take the peg out of the side hole",
    ),
    "soccer-v3": (
        "push the ball into the soccer goal",
        "kick the soccer ball into the net",
        "score the ball in the goal",
        "move the soccer ball into the goal",
        "shoot the ball into the net",
    ),
    "stick-push-v3": (
        "grab the stick and use it to push the box to the goal",
        "push the box to the target with the stick",
        "pick up the stick and shove the box with it",
        "use the stick to push the box",
        "take the stick and nudge the box over to the goal",
    ),
    "stick-pull-v3": (
        "grab the stick and use it to pull the box to the goal",
        "pull the box to the target with the stick",
        "pick up the stick and drag the box with it",
        "use the stick to pull the box",
        "take the stick, hook the box's handle and pull it to the goal",
    ),
    "push-v3": (
        "push the puck to the goal",
        "slide the puck to the target",
        "shove the puck over to the goal",
        "move the puck to the goal by pushing it",
        "nudge the puck onto the target spot",
    ),
    "push-wall-v3": (
        "push the puck around the wall to the goal",
        "slide the puck past the wall to the target",
        "shove the puck around the wall onto the goal",
        "move the puck to the goal behind the wall by pushing it",
        "nudge the puck past the wall to the target spot",
    ),
    "push-back-v3": (
        "pull the puck back toward you onto the goal",
        "drag the puck backward to the target",
        "bring the puck back to the goal",
        "move the puck toward yourself until it reaches the goal",
        "slide the puck backwards onto the target spot",
    ),
    "reach-v3": (
        "move the gripper to the goal",
        "reach the goal position",
        "bring your hand to the target",
        "reach out to the target location",
        "move your end effector to the goal point",
    ),
    "reach-wall-v3": (
        "reach over the wall to the goal",
        "move the gripper past the wall to the target",
        "bring your hand around the wall to the goal",
        "reach the goal position behind the wall",
        "get your end effector to the target on the other side of the wall",
    ),
    "shelf-place-v3": (
        "pick up the puck and place it on the shelf",
        "put the puck onto the shelf",
        "lift the puck and set it on the shelf",
        "grab the puck and move it onto the shelf",
        "place the puck on the shelf at the goal",
    ),
    "sweep-into-v3": (
        "sweep the puck into the hole",
        "push the puck into the hole in the table",
        "slide the puck into the hole",
        "brush the puck across the table into the hole",
        "move the puck into the hole by sweeping it",
    ),
    "sweep-v3": (
        "sweep the puck off the edge of the table",
        "push the puck off the table",
        "slide the puck over the table edge",
        "brush the puck off the side of the table",
        "clear the puck off the table",
    ),
    "window-open-v3": (
        "slide the window open",
        "open the window",
        "push the window open",
        "open the window by sliding it",
        "slide the window pane open",
    ),
    "window-close-v3": (
        "slide the window closed",
        "close the window",
        "push the window shut",
        "shut the window by sliding it",
        "slide the window pane closed",
    ),
}

INSTRUCTIONS: dict[str, str] = {task: _LANGUAGE[task][0] for task in ALL_TASKS}

# Held out for tests of language following: never used for training.
PARAPHRASES: dict[str, tuple[str, ...]] = {task: _LANGUAGE[task][1:] for task in ALL_TASKS}


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
