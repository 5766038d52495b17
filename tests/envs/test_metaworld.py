"""Tests for wam.envs.metaworld (MetaWorldEnv) and wam.envs.rendering (GL backend choice)."""

from __future__ import annotations

import gc
import importlib.util
import os
import sys
import types
import warnings

import numpy as np
import pytest

from wam.envs import rendering
from wam.envs.metaworld import CAMERAS, MetaWorldEnv, make_env
from wam.errors import WamError

SIZE = 48


@pytest.fixture(autouse=True)
def _instruction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand in for wam.data.tasks only while it does not exist yet (it is written separately)."""
    if importlib.util.find_spec("wam.data.tasks") is None:
        stub = types.ModuleType("wam.data.tasks")
        stub.instruction = lambda task: f"solve {task}"  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "wam.data.tasks", stub)


@pytest.fixture
def reach():
    env = make_env("reach-v3", image_size=SIZE)
    yield env
    env.close()


def _run_expert(env: MetaWorldEnv, seed: int) -> tuple[int, bool, bool]:
    """Roll out the scripted expert; return (steps, terminated, truncated) of the last step."""
    obs, _ = env.reset(seed=seed)
    for steps in range(1, env.max_steps + 1):
        obs, _, terminated, truncated, info = env.step(env.expert_action(obs))
        assert terminated == info["success"]
        if terminated or truncated:
            return steps, terminated, truncated
    raise AssertionError("episode neither terminated nor truncated")


# -- observations ---------------------------------------------------------------------------------


def test_observation_matches_space(reach: MetaWorldEnv) -> None:
    obs, info = reach.reset(seed=0)
    assert set(obs) == {
        "observation.images.corner2", "observation.state", "observation.environment_state"
    }
    assert set(obs) == set(reach.observation_space.spaces)
    assert reach.image_key == "observation.images.corner2"
    image = obs[reach.image_key]
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    assert obs["observation.state"].shape == (4,) and obs["observation.state"].dtype == np.float32
    env_state = obs["observation.environment_state"]
    assert env_state.shape == (39,) and env_state.dtype == np.float32
    np.testing.assert_array_equal(obs["observation.state"], env_state[:4])
    assert reach.observation_space.contains(obs)
    assert info["task"] == "reach-v3" and info["seed"] == 0
    assert isinstance(info["instruction"], str) and info["instruction"]
    assert np.any(env_state[-3:] != 0), "the goal must be observable"
    obs, reward, terminated, truncated, info = reach.step(np.zeros(4, np.float32))
    assert reach.observation_space.contains(obs)
    assert np.any(obs["observation.environment_state"][-3:] != 0), "goal clipped away in step"
    assert isinstance(reward, float) and isinstance(info["success"], bool)
    np.testing.assert_array_equal(reach.render(), obs[reach.image_key])
    assert reach.action_space.shape == (4,) and reach.action_space.dtype == np.float32


def test_gymnasium_env_checker_passes(reach: MetaWorldEnv) -> None:
    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # infinite Box bounds of the state
        check_env(reach, skip_render_check=True)


def test_instruction_comes_from_tasks(reach: MetaWorldEnv) -> None:
    from wam.data.tasks import instruction

    assert reach.instruction == instruction("reach-v3")


# -- seeding --------------------------------------------------------------------------------------


def test_same_seed_same_scene(reach: MetaWorldEnv) -> None:
    first, _ = reach.reset(seed=7)
    reach.step(np.ones(4, np.float32))
    reach.reset(seed=3)
    again, _ = reach.reset(seed=7)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key], err_msg=key)


def test_none_seed_is_reported_and_reproducible(reach: MetaWorldEnv) -> None:
    obs, info = reach.reset()
    again, _ = reach.reset(seed=info["seed"])
    np.testing.assert_array_equal(
        obs["observation.environment_state"], again["observation.environment_state"]
    )
    # after a given seed, unseeded resets continue a reproducible sequence of fresh scenes
    seeds = [[reach.reset(seed=5)[1]["seed"], reach.reset()[1]["seed"]] for _ in range(2)]
    assert seeds[0] == seeds[1] and seeds[0][0] != seeds[0][1]


@pytest.mark.parametrize("task, part", [("reach-v3", slice(36, 39)), ("push-v3", slice(4, 7))])
def test_different_seeds_different_scenes(task: str, part: slice) -> None:
    env = make_env(task, image_size=16)
    try:
        positions = [env.reset(seed=s)[0]["observation.environment_state"][part] for s in range(5)]
    finally:
        env.close()
    for i in range(5):
        for j in range(i):
            assert np.abs(positions[i] - positions[j]).max() > 1e-3, (i, j, positions)


# -- episodes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["reach-v3", "button-press-topdown-v3"])
def test_expert_succeeds_and_terminates(task: str) -> None:
    env = make_env(task, image_size=32)
    try:
        for seed in (0, 1):
            steps, terminated, truncated = _run_expert(env, seed)
            assert terminated and not truncated and steps < env.max_steps
        with pytest.raises(WamError, match="reset"):
            env.step(np.zeros(4, np.float32))
    finally:
        env.close()


def test_truncates_at_max_steps_then_refuses_to_step() -> None:
    env = make_env("reach-v3", image_size=16, max_steps=5)
    try:
        env.reset(seed=0)
        ends = [env.step(np.zeros(4, np.float32))[2:4] for _ in range(5)]
        assert ends == [(False, False)] * 4 + [(False, True)]
        with pytest.raises(WamError, match="reset"):
            env.step(np.zeros(4, np.float32))
        env.reset(seed=0)  # a new episode may start
        env.step(np.full(4, 5.0))  # out-of-range actions are clipped, not rejected
    finally:
        env.close()


def test_step_before_reset_and_bad_action(reach: MetaWorldEnv) -> None:
    with pytest.raises(WamError, match="reset"):
        reach.step(np.zeros(4, np.float32))
    reach.reset(seed=0)
    with pytest.raises(WamError, match="shape"):
        reach.step(np.zeros(3, np.float32))


# -- rendering ------------------------------------------------------------------------------------


def _differ(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two frames show clearly different scenes (over 1% of pixels change a lot)."""
    return bool((np.abs(a.astype(int) - b).sum(axis=-1) > 60).mean() > 0.01)


def _assert_real_frame(image: np.ndarray) -> None:
    assert image.mean() > 20, "frame is (nearly) black"
    assert image.reshape(-1, 3).std(axis=0).max() > 10, "frame is (nearly) constant"


def test_envs_one_after_another_render() -> None:
    frames = []
    for task in ("reach-v3", "button-press-topdown-v3", "reach-v3"):
        env = make_env(task, image_size=SIZE)
        obs, _ = env.reset(seed=1)
        obs, *_ = env.step(np.zeros(4, np.float32))
        frames.append(obs[env.image_key])
        env.close()
    for image in frames:
        _assert_real_frame(image)
    assert _differ(frames[0], frames[1])  # each env draws its own scene
    np.testing.assert_array_equal(frames[0], frames[2])  # and the same scene renders the same


def test_interleaved_envs_render() -> None:
    a = make_env("reach-v3", image_size=SIZE)
    b = make_env("button-press-topdown-v3", image_size=SIZE)
    try:
        first_a, first_b = a.reset(seed=0)[0][a.image_key], b.reset(seed=0)[0][b.image_key]
        _assert_real_frame(first_a)
        _assert_real_frame(first_b)
        assert _differ(first_a, first_b)
        np.testing.assert_array_equal(a.reset(seed=0)[0][a.image_key], first_a)
        a.close()
        np.testing.assert_array_equal(b.reset(seed=0)[0][b.image_key], first_b)
    finally:
        a.close()
        b.close()


def test_unclosed_envs_do_not_spoil_later_ones() -> None:
    """Envs dropped without close() free their GL objects themselves (see MACHINE.md)."""
    reference = make_env("button-press-topdown-v3", image_size=SIZE)
    expected = reference.reset(seed=2)[0][reference.image_key]
    reference.close()
    for task in ("reach-v3", "button-press-topdown-v3", "reach-v3", "button-press-topdown-v3"):
        env = make_env(task, image_size=SIZE)  # the previous one is dropped here, unclosed
        obs, _ = env.reset(seed=2)
        gc.collect()
        obs, *_ = env.step(np.zeros(4, np.float32))
        _assert_real_frame(obs[env.image_key])
    np.testing.assert_array_equal(env.reset(seed=2)[0][env.image_key], expected)
    env.close()


def _object_row(env: MetaWorldEnv, xyz: tuple[float, float, float]) -> float:
    """Mean image row of the pixels that show push-v3's puck when placed at `xyz`."""
    inner = env._env
    inner._set_obj_xyz(np.array(xyz))
    shown = env._render_frame().astype(int)
    inner._set_obj_xyz(np.array([5.0, 5.0, -5.0]))  # out of view
    hidden = env._render_frame().astype(int)
    rows, _ = np.nonzero(np.abs(shown - hidden).sum(axis=-1) > 30)
    assert rows.size > 0, f"object at {xyz} not visible"
    return float(rows.mean())


@pytest.mark.parametrize("camera", ["corner", "corner2", "corner3", "corner4", "behindGripper"])
def test_image_is_upright(camera: str) -> None:
    """Lifting the object in the world must move it up (to smaller rows) in the image."""
    env = make_env("push-v3", camera=camera, image_size=96)
    try:
        env.reset(seed=0)
        for x, y in [(0.1, 0.7), (-0.1, 0.8)]:  # away from the hand, which could hide it
            assert _object_row(env, (x, y, 0.15)) < _object_row(env, (x, y, 0.02)) - 2
    finally:
        env.close()


# -- bad arguments --------------------------------------------------------------------------------


def test_unknown_task_lists_close_matches() -> None:
    with pytest.raises(WamError, match="reach-v3"):
        MetaWorldEnv("reach-v2")
    with pytest.raises(WamError, match="pick-place-v3"):
        MetaWorldEnv("pick_place")


def test_unknown_camera_lists_cameras() -> None:
    with pytest.raises(WamError) as err:
        MetaWorldEnv("reach-v3", camera="front")
    assert all(name in str(err.value) for name in CAMERAS)


@pytest.mark.parametrize("size", [8, 1024, 96.0])
def test_bad_image_size(size) -> None:
    with pytest.raises(WamError, match=r"image_size.*\[16, 512\]"):
        MetaWorldEnv("reach-v3", image_size=size)


def test_bad_max_steps() -> None:
    with pytest.raises(WamError, match="max_steps"):
        MetaWorldEnv("reach-v3", max_steps=0)


# -- GL backend -----------------------------------------------------------------------------------


def test_existing_backend_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    monkeypatch.setattr(rendering, "_probe", lambda backend: pytest.fail("probed"))
    assert rendering.configure_gl_backend() == "osmesa"
    assert os.environ["PYOPENGL_PLATFORM"] == "osmesa"


def test_probe_picks_a_working_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    monkeypatch.setenv(rendering.PROBED_VAR, "")  # restored (removed) after the test
    monkeypatch.delenv(rendering.PROBED_VAR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mujoco is already imported here
        backend = rendering.configure_gl_backend()
    assert backend in rendering.CANDIDATES
    assert os.environ["MUJOCO_GL"] == os.environ["PYOPENGL_PLATFORM"] == backend


def test_no_backend_explains_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(rendering, "_probe", lambda backend: (False, f"no {backend} here"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(WamError) as err:
            rendering.configure_gl_backend()
    message = str(err.value)
    for part in ("egl", "osmesa", "no egl here", "no osmesa here", "libosmesa6", "libegl1"):
        assert part in message
    assert "MUJOCO_GL" not in os.environ


@pytest.mark.parametrize("camera", ["corner2", "corner4"])
def test_project_lands_on_the_rendered_goal_marker(camera: str) -> None:
    """The blue goal marker of pick-place (the only saturated blue in the scene) is drawn where
    `project` puts the state's goal (after one step: the first frame's marker is not yet moved)."""
    env = MetaWorldEnv("pick-place-v3", camera=camera, image_size=128)
    try:
        env.reset(seed=5)
        obs, *_ = env.step(np.zeros(4, np.float32))
        im = obs[env.image_key].astype(int)
        rows, cols = np.nonzero((im[..., 2] > 120) & (im[..., 0] < 60) & (im[..., 1] < 60))
        assert len(rows) >= 3
        col, row = env.project(obs["observation.environment_state"][36:39])[0]
        assert abs(cols.mean() + 0.5 - col) < 1.0 and abs(rows.mean() + 0.5 - row) < 1.0
    finally:
        env.close()


def _expert_rollout(env: MetaWorldEnv, seed: int, steps: int = 60) -> list[np.ndarray]:
    """Every observation (state and frame) of the scripted expert, with a fixed wobble on its actions."""
    obs, _ = env.reset(seed=seed)
    wobble = np.random.default_rng(seed).normal(0, 0.3, (steps, 4)).astype(np.float32)
    seen = [v for v in obs.values()]
    for k in range(steps):
        obs, _, terminated, truncated, _ = env.step(np.clip(env.expert_action(obs) + wobble[k], -1, 1))
        seen += [v for v in obs.values()]
        if terminated or truncated:
            break
    return seen


def test_an_episode_does_not_depend_on_the_one_before() -> None:
    """A reused env (an eval or collect worker keeps one per task) starts every episode from the same simulator
    state: push scene 10001 after scene 10000 is the rollout of a fresh env, bit for bit (before the reset cleared
    MuJoCo's data, eval with 1 and 2 workers differed in 2 of 30 episodes)."""
    fresh = MetaWorldEnv("push-v3", camera="corner2", image_size=128)
    used = MetaWorldEnv("push-v3", camera="corner2", image_size=128)
    try:
        want = _expert_rollout(fresh, 10001)
        _expert_rollout(used, 10000)
        got = _expert_rollout(used, 10001)
        assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
    finally:
        fresh.close(), used.close()
