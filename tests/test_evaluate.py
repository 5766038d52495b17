"""`wam eval`: closed-loop rollouts in worker processes, Wilson intervals, eval_info.json, videos."""

from __future__ import annotations

import json

import numpy as np

import pytest

from tests.test_train import POLICY
from wam.cli import main
from wam.config import apply_overrides
from wam.data.video import decode_video
from wam.data.tasks import paraphrases
from wam.envs.collect import CollectConfig, collect
from wam.errors import ConfigError
from wam.evaluate import CRASH_SEED_ENV, EvalConfig, evaluate, side_by_side, wilson
from wam.train import TrainConfig, train_policy


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """Wilson's score interval (z = 1.96) from its textbook form, to check the summaries against."""
    z2, p = 1.96 ** 2, k / n
    centre, half = (p + z2 / (2 * n)), 1.96 * (p * (1 - p) / n + z2 / (4 * n * n)) ** 0.5
    return max(0.0, (centre - half) / (1 + z2 / n)), min(1.0, (centre + half) / (1 + z2 / n))


def test_wilson_interval():
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-3) and high == pytest.approx(0.7634, abs=1e-3)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0 and wilson(0, 0) == (0.0, 1.0)
    # the rate is inside its interval whatever the rounding (0/11's lower end once came out 1e-17 above 0, and
    # the study report's error bar, rate - low, was negative: matplotlib refused it and the study stopped)
    assert all(wilson(k, n)[0] <= k / n <= wilson(k, n)[1] for n in range(1, 401) for k in range(n + 1))


def train_reach_policy(root, state: str = "proprio"):
    """A tiny action-only policy in `root/p`, trained on 2 reach-v3 demos at 32 px collected into `root/d`."""
    collect(CollectConfig(tasks="reach-v3", episodes=2, out=str(root / "d"), image_size=32, workers=1, state=state),
            progress_bar=False)
    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "action_only", "data.path": str(root / "d"),
                                          "data.val_fraction": 0.5, "out": str(root / "p")})
    train_policy(cfg, progress=False)
    return root


@pytest.fixture(scope="module")
def reach_policy(tmp_path_factory):
    """The tiny reach policy, shared by the eval tests."""
    return train_reach_policy(tmp_path_factory.mktemp("eval"))


def test_eval_end_to_end(reach_policy, capsys):
    tmp_path = reach_policy
    info = evaluate(EvalConfig(policy=str(tmp_path / "p"), episodes=2, workers=1, max_steps=12, videos=1,
                               paraphrase=1), progress=False)
    assert info["instructions"] == {"reach-v3": paraphrases("reach-v3")[1]} and info["config"]["paraphrase"] == 1
    assert info["per_task"]["reach-v3"]["episodes"] == 2 and info["overall"]["episodes"] == 2
    assert {e["seed"] for e in info["episodes"]} == {10_000, 10_001}  # never the training scenes 0, 1
    assert all(e["length"] <= 12 for e in info["episodes"]) and info["overall"]["ms_per_chunk"] > 0
    # the summary is the episodes' own: success count, rate and Wilson interval recomputed from them
    wins = sum(e["success"] for e in info["episodes"])
    assert info["overall"]["successes"] == wins and info["overall"]["success"] == wins / 2
    assert info["overall"]["ci95"] == pytest.approx(wilson_by_hand(wins, 2), abs=1e-9)
    assert (tmp_path / "p/eval/eval_episode_0.mp4").exists() and not (tmp_path / "p/eval/eval_episode_1.mp4").exists()
    assert json.loads((tmp_path / "p/eval/eval_info.json").read_text())["overall"]["episodes"] == 2
    assert not list((tmp_path / "p/eval").glob("pred_episode_*"))  # action-only imagines nothing
    assert json.loads((tmp_path / "p/tasks.json").read_text())["env_tasks"] == ["reach-v3"]
    with pytest.raises(ConfigError, match="not trained on push-v3"):
        evaluate(EvalConfig(policy=str(tmp_path / "p"), tasks="push-v3"), progress=False)


def test_a_crashing_worker_is_replaced_and_its_episode_counted_failed(reach_policy, tmp_path, monkeypatch):
    monkeypatch.setenv(CRASH_SEED_ENV, "10000")  # inherited by the spawned workers: that episode always dies
    info = evaluate(EvalConfig(policy=str(reach_policy / "p"), episodes=2, workers=1, max_steps=5, videos=0,
                               out=str(tmp_path / "eval")), progress=False)
    crashed = [e for e in info["episodes"] if e["seed"] == 10_000]
    assert len(crashed) == 1 and not crashed[0]["success"] and "also when run alone" in crashed[0]["error"]
    assert [e["seed"] for e in info["episodes"] if "error" not in e] == [10_001]  # the pool came back
    assert info["per_task"]["reach-v3"]["failed_by_crash"] == 1 and info["overall"]["episodes"] == 2


def test_side_by_side_shows_the_frame_imagined_for_each_step():
    real = np.zeros((10, 8, 8, 3), np.uint8)
    plans = [(0, np.full((2, 8, 8, 3), 1, np.uint8)), (4, np.full((2, 8, 8, 3), 2, np.uint8))]
    plans[0][1][1] = 11  # the first plan's frame aimed at step 0 + 4
    out = side_by_side(real, plans, offsets=(2, 4))  # plan 0 aims at steps 2, 4; plan 1 at 6, 8
    assert out.shape == (10, 8, 18, 3)
    right = out[:, 0, -1, 0]
    assert list(right) == [0, 0, 1, 1, 11, 11, 2, 2, 2, 2]


def test_eval_needs_a_policy(capsys):
    with pytest.raises(ConfigError, match="--policy is required"):
        EvalConfig().check()
    assert main(["eval", "--policy=/nowhere", "--tasks=reach"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_paraphrase_option():
    from wam.data.tasks import instruction, paraphrases
    from wam.evaluate import task_instruction

    assert task_instruction("reach-v3") == instruction("reach-v3")
    assert task_instruction("reach-v3", 2) == paraphrases("reach-v3")[2] != instruction("reach-v3")
    EvalConfig(policy="x", paraphrase=3).check()
    for bad in (-2, 4):
        with pytest.raises(ConfigError, match="--paraphrase must be"):
            EvalConfig(policy="x", paraphrase=bad).check()


def test_the_policy_is_told_the_given_text(monkeypatch):
    """run_episode hands the policy the text it was given (a paraphrase), not the training instruction."""
    import wam.evaluate as ev
    from wam.envs.metaworld import MetaWorldEnv
    from wam.train import TrainConfig

    class Told:
        image_key, imagined, _queue, record_imagination, state_dim, state_names = "observation.images.corner", None, (), False, 4, ()

        def __init__(self):
            self.texts = []

        def reset(self, **episode):
            pass

        def select_action(self, obs, generator=None):
            self.texts.append(obs["task"])
            return np.zeros(4, np.float32)

    cfg = apply_overrides(TrainConfig(), {"data.image_size": 32})
    monkeypatch.setitem(ev._WORKER, "policy", Told())
    monkeypatch.setitem(ev._WORKER, "cfg", cfg)
    monkeypatch.setitem(ev._WORKER, "env", None)
    try:
        ev.run_episode("reach-v3", 10_000, 3, False, "a held-out paraphrase")
        assert set(ev._WORKER["policy"].texts) == {"a held-out paraphrase"}
    finally:
        env = ev._WORKER.get("env")
        if isinstance(env, MetaWorldEnv):
            env.close()


def test_each_chunk_s_predicted_value_is_recorded(monkeypatch):
    """A paradigm with a value frame leaves `last_value` after each chunk: run_episode keeps one per chunk."""
    import wam.evaluate as ev
    from wam.envs.metaworld import MetaWorldEnv
    from wam.train import TrainConfig

    class Valued:  # the policy contract: `last_value`, the value the last chunk's value frame predicted
        image_key, imagined, _queue, record_imagination, last_value = "observation.images.corner", None, (), False, None
        state_dim, state_names = 4, ()  # the env's state layout follows them (4, no names: proprio)

        def reset(self, **episode):
            pass

        def select_action(self, obs, generator=None):  # a new chunk every step (the queue stays empty)
            self.last_value = round(0.25 * (1 + (self.last_value or 0)), 4)
            return np.zeros(4, np.float32)

    monkeypatch.setitem(ev._WORKER, "policy", Valued())
    monkeypatch.setitem(ev._WORKER, "cfg", apply_overrides(TrainConfig(), {"data.image_size": 32}))
    monkeypatch.setitem(ev._WORKER, "env", None)
    try:
        result = ev.run_episode("reach-v3", 10_000, 3, False)
    finally:
        env = ev._WORKER.get("env")
        if isinstance(env, MetaWorldEnv):
            env.close()
    assert result["chunk_values"] == [0.25, 0.3125, 0.3281]


def _without_timings(info: dict) -> dict:
    """eval_info without what is measured by the clock (and the settings that differ on purpose)."""
    info = json.loads(json.dumps(info))
    for key in ("ms_per_chunk", "control_hz"):
        info["overall"].pop(key)
    for episode in info["episodes"]:
        episode.pop("seconds"), episode.pop("chunk_ms")
    info["config"].pop("workers"), info["config"].pop("out")
    return info


def test_the_same_eval_gives_the_same_rollouts_with_1_or_2_workers(reach_policy, tmp_path):
    """Episodes draw their noise from episode_generator(seed, task, k), not the worker's RNG: the same
    command gives the same eval_info and videos whatever the worker count (on main: up to 192 apart)."""
    infos = {w: evaluate(EvalConfig(policy=str(reach_policy / "p"), episodes=2, workers=w, max_steps=6, videos=2,
                                    out=str(tmp_path / f"w{w}")), progress=False) for w in (1, 2)}
    assert _without_timings(infos[1]) == _without_timings(infos[2])
    assert [e["episode"] for e in infos[2]["episodes"]] == [0, 1]  # in job order, whichever finished first
    assert json.loads((tmp_path / "w2/eval_info.json").read_text())["episodes"][1]["action_digest"] == \
        infos[1]["episodes"][1]["action_digest"]
    # bit-exact videos too: encodes repeat since mbtree=0 (wam/data/video.py; without it this failed in CI at 25 apart)
    for i in range(2):
        assert np.array_equal(decode_video(tmp_path / f"w1/eval_episode_{i}.mp4"),
                              decode_video(tmp_path / f"w2/eval_episode_{i}.mp4")), i


def test_the_policy_noise_decides_the_rollout(reach_policy, monkeypatch):
    """The test above can fail: in one scene, another episode generator gives other actions and frames."""
    import wam.evaluate as ev
    from wam.train import load_policy

    policy, cfg = load_policy(reach_policy / "p")
    monkeypatch.setitem(ev._WORKER, "policy", policy)
    monkeypatch.setitem(ev._WORKER, "cfg", cfg)
    monkeypatch.setitem(ev._WORKER, "env", None)
    try:
        runs = [ev.run_episode("reach-v3", 10_000, 6, True, None, episode=0, eval_seed=s) for s in (7, 7, 8)]
    finally:
        ev._WORKER["env"].close()
    assert runs[0]["action_digest"] == runs[1]["action_digest"] != runs[2]["action_digest"]
    assert np.array_equal(runs[0]["frames"], runs[1]["frames"])
    assert not np.array_equal(runs[0]["frames"], runs[2]["frames"])


def test_eval_of_a_damaged_policy_is_one_line_naming_the_file(reach_policy, tmp_path, capsys):
    import shutil

    from wam.checkpoint import resolve_checkpoint

    shutil.copytree(reach_policy / "p", tmp_path / "p", ignore=shutil.ignore_patterns("eval*"))
    ema = resolve_checkpoint(tmp_path / "p") / "ema.safetensors"
    ema.write_bytes(ema.read_bytes()[:100])
    assert main(["eval", f"--policy={tmp_path / 'p'}", "--episodes=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{ema} has 100 bytes" in err[0] and "an intact earlier checkpoint" in err[0]
    assert not (tmp_path / "p/eval").exists()  # refused before any output


def test_eval_into_a_folder_another_run_writes_is_refused(reach_policy, tmp_path, capsys):
    import subprocess
    import sys

    from tests.runs.test_lock import HOLD

    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "e")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["eval", f"--policy={reach_policy / 'p'}", f"--out={tmp_path / 'e'}", "--episodes=1"]) == 2
        assert f"in use by another wam run (pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
def _episode(policy, cfg, seed: int, episode: int = 0) -> dict:
    import wam.evaluate as ev
    from wam.envs.metaworld import MetaWorldEnv

    ev._WORKER.update(policy=policy, cfg=cfg)
    try:
        return ev.run_episode("reach-v3", seed, 12, False, episode=episode)
    finally:
        env = ev._WORKER.pop("env", None)
        if isinstance(env, MetaWorldEnv):
            env.close()


def test_remote_eval_gives_the_local_actions(reach_policy, monkeypatch):
    """The same episode through `wam serve` and in-process: identical actions (the noise of each
    episode comes from episode_generator(seed, task, episode) on either side), and another episode differs."""
    import wam.evaluate as ev
    from wam.serve.server import PolicyServer, ServeConfig, load_service
    from wam.train import load_policy

    monkeypatch.setattr(ev, "_WORKER", {})
    local = _episode(*load_policy(reach_policy / "p"), seed=10_000)  # load_policy acts in fp32 by default
    server = PolicyServer(load_service(ServeConfig(policy=str(reach_policy / "p"), precision="fp32")), port=0).start()
    try:
        client, cfg = ev.remote_policy(server.address)
        remote = _episode(client, cfg, seed=10_000)
        other = _episode(client, cfg, seed=10_001, episode=1)  # another scene, another noise
        client.close()
    finally:
        server.stop()
    assert remote["length"] == local["length"] == 12
    assert remote["action_digest"] == local["action_digest"] != other["action_digest"]
    assert remote["jump_boundary"] == pytest.approx(local["jump_boundary"])


@pytest.mark.slow
def test_wam_eval_remote_end_to_end(reach_policy, tmp_path):
    """`evaluate(remote=...)` in its worker process gives the digests of local `evaluate`."""
    from wam.serve.server import PolicyServer, ServeConfig, load_service

    kw = {"episodes": 2, "workers": 1, "max_steps": 10, "videos": 0}
    local = evaluate(EvalConfig(policy=str(reach_policy / "p"), out=str(tmp_path / "l"), **kw), progress=False)
    server = PolicyServer(load_service(ServeConfig(policy=str(reach_policy / "p"))), port=0).start()
    try:
        remote = evaluate(EvalConfig(remote=server.address, out=str(tmp_path / "r"), **kw), progress=False)
    finally:
        server.stop()
    digests = lambda info: sorted((e["seed"], e["action_digest"]) for e in info["episodes"])  # noqa: E731
    assert digests(remote) == digests(local) and remote["config"]["remote"] == server.address


def test_remote_options_need_a_remote():
    with pytest.raises(ConfigError, match="need --remote"):
        EvalConfig(policy="x", merge="rtc").check()
    with pytest.raises(ConfigError, match="HOST:PORT"):
        EvalConfig(remote="localhost").check()
    EvalConfig(remote="127.0.0.1:8765", threshold=4, merge="blend").check()


def test_a_policy_trained_on_an_oracle_state_is_evaluated_with_it(tmp_path):
    """`wam collect --state=goal` (the goal's xyz in observation.state; `object` has the same 7 dims): the policy
    trained on it keeps the state's names, and evaluation builds the env with that layout."""
    from wam.envs.metaworld import state_names
    from wam.evaluate import load_for_eval

    train_reach_policy(tmp_path, state="goal")
    policy, run_cfg = load_for_eval(EvalConfig(policy=str(tmp_path / "p")))
    assert policy.state_dim == 7 and policy.state_names == tuple(state_names("goal"))
    episode = _episode(policy, run_cfg, 10_000)
    assert episode["length"] >= 1
