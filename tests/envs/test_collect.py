"""`wam collect` end to end on tiny settings: dataset contents, determinism, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from wam.cli import main
from wam.data.lerobot_format import LeRobotDataset
from wam.envs.collect import CONFIG_FILE, CollectConfig, TaskProgress, collect, dataset_features
from wam.envs.metaworld import MetaWorldEnv, state_layout_of, state_names
from wam.errors import ConfigError, WamError

TASKS = "reach-v3,button-press-topdown-v3"


def _seeds(root: Path) -> set[tuple[str, int]]:
    return {(e.extras["env_task"], int(e.extras["seed"])) for e in LeRobotDataset(root).episodes}


def test_next_seeds_is_a_prefix_with_at_most_the_deficit_in_flight():
    p = TaskProgress("reach-v3", successes={0, 2}, failures={1}, in_flight={3})
    assert p.next_seeds(0, wanted=5, max_attempts=100) == [4, 5]
    assert p.next_seeds(0, wanted=3, max_attempts=100) == []
    assert p.next_seeds(0, wanted=6, max_attempts=6) == [4, 5]  # budget of 6 attempts in all


@pytest.mark.parametrize("state", ["proprio", "object", "goal", "privileged"])
def test_env_observations_match_dataset_features(state):
    env = MetaWorldEnv("push-v3", camera="corner2", image_size=32, state=state)
    try:
        obs, _ = env.reset(seed=0)
        features = dataset_features("corner2", 32, state)
        for key, value in obs.items():
            assert list(value.shape) == features[key]["shape"], key
        assert set(obs) == {k for k in features if k.startswith("observation.")}
        full, names = obs["observation.environment_state"], features["observation.state"]["names"]
        want = {"hand_x": full[0], "gripper": full[3], "object_z": full[6], "goal_x": full[36], "goal_z": full[38]}
        got = dict(zip(names, obs["observation.state"]))
        assert all(got[k] == v for k, v in want.items() if k in got)
        assert ("goal_z" in got) == (state in ("goal", "privileged")) and ("object_x" in got) == (state in ("object", "privileged"))
        assert len(names) == {"proprio": 4, "object": 7, "goal": 7, "privileged": 10}[state]
        assert state_layout_of(len(names), names) == state
    finally:
        env.close()


def test_the_state_layout_is_found_by_names_then_by_an_unambiguous_size():
    assert state_layout_of(7, state_names("goal")) == "goal" and state_layout_of(7, state_names("object")) == "object"
    assert state_layout_of(4) == state_layout_of(4, ["x", "y", "z", "g"]) == "proprio"  # a policy from before names
    with pytest.raises(WamError, match="object: 7, goal: 7"):
        state_layout_of(7)  # two layouts of that size, and no names to tell them apart
    with pytest.raises(WamError, match="proprio: 4"):
        state_layout_of(5)


def test_collect_writes_a_dataset_with_the_first_successful_seeds(tmp_path):
    one = collect(CollectConfig(tasks=TASKS, episodes=2, out=str(tmp_path / "w1"), image_size=32, workers=1),
                  progress_bar=False)
    two = collect(CollectConfig(tasks=TASKS, episodes=2, out=str(tmp_path / "w2"), image_size=32, workers=2),
                  progress_bar=False)
    assert _seeds(tmp_path / "w1") == _seeds(tmp_path / "w2")  # same demos whatever the parallelism
    ds = LeRobotDataset(tmp_path / "w2")
    assert ds.num_episodes == 4 and ds.num_frames == two.frames
    assert set(ds.tasks) == {"move the gripper to the goal", "press the button down from above"}
    cols = ds.read_columns(["next.success", "next.done", "action"])
    ends = np.cumsum([e.length for e in ds.episodes]) - 1
    assert cols["next.success"][ends].all() and cols["next.done"][ends].all()  # each demo ends on success
    assert cols["next.done"].sum() == 4 and np.abs(cols["action"]).max() <= 1.0
    assert one.per_task["reach-v3"]["successes"] == 2 and "expert success" in one.table()


def test_rerun_of_a_finished_collect_does_nothing(tmp_path):
    cfg = CollectConfig(tasks="reach-v3", episodes=2, out=str(tmp_path / "d"), image_size=32, workers=1)
    collect(cfg, progress_bar=False)
    again = collect(cfg, progress_bar=False)
    assert again.frames == 0 and LeRobotDataset(tmp_path / "d").num_episodes == 2


def test_resume_with_other_settings_is_refused(tmp_path, capsys):
    out = str(tmp_path / "d")
    assert main(["collect", "--tasks=reach", "--episodes=1", f"--out={out}", "--image_size=32", "--workers=1"]) == 0
    assert main(["collect", "--tasks=reach", "--episodes=1", f"--out={out}", "--image_size=48"]) == 2
    assert "image_size: 32 -> 48" in capsys.readouterr().err
    assert main(["collect", "--tasks=reach", "--episodes=1", f"--out={out}", "--image_size=32", "--state=privileged"]) == 2
    assert "state: proprio -> privileged" in capsys.readouterr().err
    saved = Path(out) / CONFIG_FILE  # written before `state` existed: its default, so the same settings resume
    saved.write_text(json.dumps({k: v for k, v in json.loads(saved.read_text()).items() if k != "state"}))
    assert main(["collect", "--tasks=reach", "--episodes=1", f"--out={out}", "--image_size=32", "--workers=1"]) == 0


@pytest.mark.parametrize("argv,needle", [
    (["--tasks=reachh"], "reach-v3"),
    (["--tasks=mt11"], "mt10"),
    (["--episodes=0"], "--episodes must be >= 1"),
    (["--image_size=33"], "even"),
    (["--camera=nose"], "corner2"),
    (["--state=oracle"], "proprio, object, goal, privileged"),
    (["--episode=3"], "did you mean episodes"),
])
def test_bad_collect_input_is_one_clear_line(tmp_path, capsys, argv, needle):
    code = main(["collect", f"--out={tmp_path / 'x'}", "--image_size=32", "--workers=1", "--episodes=1", *argv])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err


def test_killed_collect_keeps_completed_episodes_and_resumes(tmp_path):
    out = tmp_path / "killed"
    argv = [sys.executable, "-m", "wam", "collect", "--tasks=reach-v3", "--episodes=6", f"--out={out}",
            "--image_size=32", "--workers=2"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    info = out / "meta/info.json"
    while time.time() < deadline:
        if info.exists() and json.loads(info.read_text())["total_episodes"] >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # main process and its workers, mid-run
    proc.wait()
    ds = LeRobotDataset(out)
    assert 2 <= ds.num_episodes < 6
    for e in range(ds.num_episodes):  # every committed episode is whole
        assert ds.decode_frames("observation.images.corner2", e).shape[0] == ds.episodes[e].length
    kept = _seeds(out)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    resumed = LeRobotDataset(out)
    assert resumed.num_episodes == 6 and kept <= _seeds(out)
    assert len(_seeds(out)) == 6  # no seed collected twice
    np.testing.assert_array_equal(resumed.read_columns(["index"])["index"], np.arange(resumed.num_frames))


@pytest.mark.parametrize("views,what", [("lid", "not a Meta-World camera"), ("corner2", "repeats a camera"),
                                        ("corner,corner", "repeats a camera")])
def test_bad_views_are_refused_with_a_line(views, what, tmp_path):
    with pytest.raises(ConfigError, match=what):
        collect(CollectConfig(tasks="reach-v3", episodes=1, out=str(tmp_path / "d"), views=views), progress_bar=False)
    assert not (tmp_path / "d").exists()


def test_views_add_video_features_the_env_observes():
    features = dataset_features("corner2", 32, "proprio", ("corner", "topview"))
    videos = [k for k, f in features.items() if f["dtype"] == "video"]
    assert videos == ["observation.images.corner2", "observation.images.corner", "observation.images.topview"]
    env = MetaWorldEnv("reach-v3", camera="corner2", image_size=32, views=("corner", "topview"))
    try:
        obs, _ = env.reset(seed=0)
        assert [k for k in obs if k.startswith("observation.images.")] == videos == env.image_keys
        assert all(obs[k].shape == (32, 32, 3) for k in videos) and not np.array_equal(obs[videos[0]], obs[videos[1]])
    finally:
        env.close()
