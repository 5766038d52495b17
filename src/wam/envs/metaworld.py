"""Meta-World v3 tasks as a gymnasium env whose observations match wam's dataset features.

One :class:`MetaWorldEnv` wraps one of the 50 Meta-World v3 tasks ("reach-v3", "push-v3", ...)
with the goal observable, a fresh random scene per seed, fast CPU rendering (no MSAA, shadows or
reflections) and upright frames. Observations are dicts with the dataset's keys, so a policy
trained on a wam dataset runs here unchanged:

- ``observation.images.<camera>``: uint8 (H, W, 3) RGB frame, upright; one more per camera of ``views``
  (a second viewpoint, e.g. for `policy.keypoints.views`: one camera loses the depth along its rays)
- ``observation.state``: float32 (4,) hand xyz + gripper opening; with ``state="privileged"`` (10,):
  also the object's and the goal's xyz, which a camera-only robot does not have (an upper bound for
  what perceiving them is worth: see :data:`STATE_LAYOUTS`); ``"object"`` / ``"goal"`` (7,): one of them
- ``observation.environment_state``: float32 (39,) full Meta-World state (for scripted experts)

An episode ends with ``terminated=True`` at the first success, or ``truncated=True`` after
``max_steps`` steps. mujoco and metaworld are imported lazily, after
:func:`wam.envs.rendering.configure_gl_backend` has chosen an offscreen GL backend.
"""

from __future__ import annotations

import atexit
import difflib
import numbers
import weakref
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from wam.envs.rendering import configure_gl_backend
from wam.errors import WamError

CAMERAS: tuple[str, ...] = (
    "corner", "corner2", "corner3", "corner4", "topview", "behindGripper", "gripperPOV"
)
"""Cameras defined in every Meta-World v3 scene."""

FLIPPED_CAMERAS: frozenset[str] = frozenset({"corner", "corner2", "corner3", "corner4"})
"""Cameras whose frames come out rotated by 180 degrees (checked by eye)."""

MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 512
ENV_STATE_DIM, ACTION_DIM = 39, 4  # observation.state: STATE_LAYOUTS (4 or 10 dims)
DEFAULT_MAX_STEPS = 500  # metaworld's max_path_length
STATE_PARTS: dict[str, slice] = {"hand": slice(0, 3), "gripper": slice(3, 4), "object": slice(4, 7),
                                  "goal": slice(36, 39)}  # in the 39-dim Meta-World state
STATE_LAYOUTS: dict[str, tuple[str, ...]] = {"proprio": ("hand", "gripper"),
                                             "object": ("hand", "gripper", "object"),
                                             "goal": ("hand", "gripper", "goal"),
                                             "privileged": ("hand", "gripper", "object", "goal")}
"""What `observation.state` holds: these parts of the 39-dim Meta-World state, concatenated."""


def state_names(layout: str) -> list[str]:
    """Per-dimension names of a state layout (the dataset feature's `names`)."""
    if layout not in STATE_LAYOUTS:
        raise WamError(f"unknown state layout {layout!r}; choose one of {', '.join(STATE_LAYOUTS)}")
    return [part if part == "gripper" else f"{part}_{axis}" for part in STATE_LAYOUTS[layout]
            for axis in ("x", "y", "z")[: STATE_PARTS[part].stop - STATE_PARTS[part].start]]


def state_layout_of(dim: int, names: tuple[str, ...] | list[str] = ()) -> str:
    """The layout a policy was trained on: the one with these per-dimension `names`, else (a policy from
    before names were kept, or names of no layout) the only one with `dim` dimensions."""
    named = [k for k in STATE_LAYOUTS if state_names(k) == list(names)]
    if named:
        return named[0]
    found = [k for k in STATE_LAYOUTS if len(state_names(k)) == dim]
    if len(found) != 1:
        sizes = ", ".join(f"{k}: {len(state_names(k))}" for k in STATE_LAYOUTS)
        raise WamError(f"no single Meta-World state layout has {dim} dimensions ({sizes}) and the policy's state "
                       f"names {list(names) or '(none kept)'} are none of theirs: train it again on its dataset")
    return found[0]


_OPEN_ENVS: weakref.WeakSet[MetaWorldEnv] = weakref.WeakSet()
_AT_EXIT: list[bool] = []  # non-empty once _close_open_envs is registered


def _close_open_envs() -> None:
    """Close envs still open at exit, before mujoco's EGL display is terminated (no noise)."""
    for env in list(_OPEN_ENVS):
        env.close()


def _track(env: MetaWorldEnv) -> None:
    """Remember `env`; register the exit hook after the first GL context (atexit runs LIFO)."""
    _OPEN_ENVS.add(env)
    if not _AT_EXIT:
        atexit.register(_close_open_envs)
        _AT_EXIT.append(True)


def _all_tasks() -> dict[str, type]:
    """Task name -> metaworld env class, for the 50 v3 tasks (imports metaworld)."""
    configure_gl_backend()
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return dict(ALL_V3_ENVIRONMENTS)


def _check_task(task: str, names: list[str]) -> None:
    """Raise WamError naming close matches if `task` is not a v3 task."""
    if task in names:
        return
    close = difflib.get_close_matches(str(task), names, n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else f"known tasks: {', '.join(names)}"
    raise WamError(f"unknown Meta-World task {task!r}; {hint}")


def _check_size(image_size: int) -> None:
    valid = isinstance(image_size, numbers.Integral)
    if not valid or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise WamError(
            f"image_size must be an integer in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}], "
            f"got {image_size!r}"
        )


def _camera_names(model: Any) -> list[str]:
    """Names of the cameras defined in a MuJoCo model."""
    import mujoco

    return [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]


class MetaWorldEnv(gymnasium.Env):
    """One Meta-World v3 task with dict observations keyed like wam's dataset features."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(
        self,
        task: str,
        camera: str = "corner2",
        image_size: int = 96,
        max_steps: int | None = None,
        state: str = "proprio",
        views: tuple[str, ...] = (),
    ) -> None:
        _check_size(image_size)
        self._state = state
        state_dim = len(state_names(state))  # refuses an unknown layout
        if max_steps is not None and (not isinstance(max_steps, numbers.Integral) or max_steps < 1):
            raise WamError(f"max_steps must be a positive integer or None, got {max_steps!r}")
        views = tuple(views)
        for cam in (camera, *views):
            if cam not in CAMERAS:
                raise WamError(f"unknown camera {cam!r}; valid cameras: {', '.join(CAMERAS)}")
        if len(set((camera, *views))) != 1 + len(views):
            raise WamError(f"the cameras must differ: camera {camera!r}, views {', '.join(views)}")
        env_classes = _all_tasks()
        _check_task(task, sorted(env_classes))
        self._task, self._camera, self._views, self._size = task, camera, views, int(image_size)
        self._max_steps = int(max_steps) if max_steps is not None else DEFAULT_MAX_STEPS
        self.render_mode = "rgb_array"
        self._env: Any = self._make_inner(env_classes[task])
        self._viewer: Any = self._make_viewer()
        _track(self)
        self._policy: Any = None
        self._steps = 0
        self._needs_reset = True
        self._last_image: np.ndarray | None = None  # (H, W, 3) uint8
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self.observation_space = spaces.Dict({
            **{key: spaces.Box(0, 255, (self._size, self._size, 3), np.uint8) for key in self.image_keys},
            "observation.state": spaces.Box(-np.inf, np.inf, (state_dim,), np.float32),
            "observation.environment_state": spaces.Box(
                -np.inf, np.inf, (ENV_STATE_DIM,), np.float32
            ),
        })

    # -- construction -------------------------------------------------------------------------

    def _make_inner(self, env_cls: type) -> Any:
        """Build the metaworld env: goal observable, random scene per seed, no MSAA."""
        env = env_cls(
            render_mode="rgb_array", camera_name=self._camera,
            width=self._size, height=self._size,
        )
        missing = [c for c in (self._camera, *self._views) if c not in _camera_names(env.model)]
        if missing:  # all v3 scenes have them; be sure
            raise WamError(f"task {self._task!r} has no camera {', '.join(missing)}")
        env._partially_observable = False
        if "sawyer_observation_space" in env.__dict__:  # drop the cached goal-hidden space
            del env.sawyer_observation_space
        env._set_task_called = True
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        env.max_path_length = max(self._max_steps, DEFAULT_MAX_STEPS)
        env.model.vis.quality.offsamples = 0  # no MSAA: must precede the GL context
        return env

    def _make_viewer(self) -> Any:
        """Create the offscreen viewer (GL context) now and turn shadows and reflections off.

        gymnasium creates it lazily at the first render; its scene flags only exist after that.
        """
        import mujoco

        renderer = self._env.mujoco_renderer
        viewer = renderer._get_viewer(render_mode="rgb_array")
        viewer.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        viewer.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        return viewer

    # -- properties ---------------------------------------------------------------------------

    @property
    def task(self) -> str:
        return self._task

    @property
    def camera(self) -> str:
        return self._camera

    @property
    def views(self) -> tuple[str, ...]:
        return self._views

    @property
    def state_layout(self) -> str:
        return self._state

    @property
    def image_key(self) -> str:
        return f"observation.images.{self._camera}"

    @property
    def image_keys(self) -> list[str]:
        """The main camera's key, then each of `views`'."""
        return [f"observation.images.{c}" for c in (self._camera, *self._views)]

    @property
    def instruction(self) -> str:
        from wam.data.tasks import instruction

        return instruction(self._task)

    @property
    def max_steps(self) -> int:
        return self._max_steps

    # -- gymnasium API ------------------------------------------------------------------------

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode; the same `seed` gives the same scene, None draws a fresh one. Every episode starts
        from cleared MuJoCo data, so it does not depend on what the env ran before (a worker reuses its env).

        ``info["seed"]`` is the seed that fixed the scene (drawn when `seed` is None), so
        ``reset(seed=info["seed"])`` reproduces it. Seeds drawn for None come from the env's
        gymnasium RNG (``self.np_random``), which a given seed also reseeds. `options` is ignored.
        """
        env = self._require_open()
        super().reset(seed=seed)
        if seed is None:
            seed = int(self.np_random.integers(2**31 - 1))
        env.seed(int(seed))
        import mujoco

        inner = env.unwrapped
        mujoco.mj_resetData(inner.model, inner.data)  # every episode from the same simulator state, whatever ran before
        state, _ = env.reset()  # (39,) float64
        self._steps, self._needs_reset = 0, False
        info = {"task": self._task, "instruction": self.instruction, "seed": int(seed)}
        return self._observe(state), info

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Apply one (4,) action in [-1, 1]; ends on success or after `max_steps` steps."""
        env = self._require_open()
        if self._needs_reset:
            raise WamError(
                f"the {self._task} episode has ended (or never started): call reset() before step()"
            )
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (ACTION_DIM,):
            raise WamError(f"action must have shape ({ACTION_DIM},), got {action.shape}")
        action = np.clip(action, -1.0, 1.0)  # (4,) float32
        state, reward, _, _, info = env.step(action)
        self._steps += 1
        info = dict(info, success=bool(info["success"]))
        terminated = info["success"]
        truncated = not terminated and self._steps >= self._max_steps
        self._needs_reset = terminated or truncated
        return self._observe(state), float(reward), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        """The last observed frame, (H, W, 3) uint8 upright (None before the first reset)."""
        return self._last_image

    def close(self) -> None:
        """Free the MjrContext and GL context now, with the right context current."""
        env, self._env = getattr(self, "_env", None), None
        if env is None:
            return
        renderer = env.mujoco_renderer
        for viewer in renderer._viewers.values():
            viewer.make_context_current()
            viewer.con.free()  # GL objects of this context; the later destructor is a no-op
            viewer.free()  # the GL context itself
        renderer._viewers.clear()
        renderer.viewer = None
        self._viewer = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a destructor
            pass

    # -- expert ---------------------------------------------------------------------------------

    def expert_action(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Metaworld's scripted policy for this task on ``obs["observation.environment_state"]``."""
        if self._policy is None:
            from metaworld.policies import ENV_POLICY_MAP

            self._policy = ENV_POLICY_MAP[self._task]()
        state = np.asarray(obs["observation.environment_state"], dtype=np.float64)  # (39,)
        action = self._policy.get_action(state)
        return np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)  # (4,) float32

    def project(self, points: np.ndarray, camera: str | None = None) -> np.ndarray:
        """World points (N, 3) -> pixel coordinates (N, 2) as (column, row) in this env's upright
        frame of `image_size` pixels (pinhole model of the fixed `camera`, default the main one; valid after reset)."""
        import mujoco

        env = self._require_open()
        camera = camera or self._camera
        cam = mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        pos, rot = env.data.cam_xpos[cam], env.data.cam_xmat[cam].reshape(3, 3)  # rot's columns: camera axes
        local = (np.asarray(points, dtype=np.float64).reshape(-1, 3) - pos) @ rot  # (N, 3), camera looks along -z
        focal = 0.5 * self._size / np.tan(np.radians(env.model.cam_fovy[cam]) / 2)
        depth = np.maximum(-local[:, 2], 1e-6)
        col = self._size / 2 + focal * local[:, 0] / depth
        row = self._size / 2 - focal * local[:, 1] / depth
        if camera in FLIPPED_CAMERAS:  # frames are flipped upright (see _render_frame)
            col, row = self._size - col, self._size - row
        return np.stack([col, row], axis=1)

    # -- helpers --------------------------------------------------------------------------------

    def _require_open(self) -> Any:
        if self._env is None:
            raise WamError(f"the {self._task} env is closed; create a new one")
        return self._env

    def _render_frame(self, camera: str | None = None) -> np.ndarray:
        """Render the current scene from `camera` (default the main one), (H, W, 3) uint8 upright."""
        self._viewer.make_context_current()  # another env may have changed the current context
        if camera is None or camera == self._camera:
            camera, frame = self._camera, self._env.render()  # (H, W, 3) uint8
        else:
            import mujoco

            cid = mujoco.mj_name2id(self._env.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
            frame = self._viewer.render(render_mode="rgb_array", camera_id=cid)  # what env.render() does, other camera
        if camera in FLIPPED_CAMERAS:
            frame = frame[::-1, ::-1]
        return np.ascontiguousarray(frame)

    def _observe(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """Dataset-keyed observation from the (39,) metaworld state and a fresh frame."""
        self._last_image = self._render_frame()
        env_state = np.asarray(state, dtype=np.float32)  # (39,)
        views = {f"observation.images.{c}": self._render_frame(c) for c in self._views}
        return {
            self.image_key: self._last_image, **views,
            "observation.state": np.concatenate([env_state[STATE_PARTS[k]] for k in STATE_LAYOUTS[self._state]]),  # (Ds,)
            "observation.environment_state": env_state,
        }


def make_env(
    task: str, camera: str = "corner2", image_size: int = 96, max_steps: int | None = None, state: str = "proprio",
    views: tuple[str, ...] = (),
) -> MetaWorldEnv:
    """Create a :class:`MetaWorldEnv` (see there)."""
    return MetaWorldEnv(task, camera=camera, image_size=image_size, max_steps=max_steps, state=state, views=views)
