"""`policy.keypoints`: a pixel detector fitted before the policy trains; its positions are more state numbers,
precomputed for training windows and found in the live frame when acting (wam.paradigms.keypoints)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import write_dataset
from tests.test_train import POLICY
from wam.config import apply_overrides
from wam.data.frames import cached_frames
from wam.data.lerobot_format import LeRobotDataset
from wam.errors import ConfigError, DatasetError, WamError
from wam.paradigms.keypoints import locate_all
from wam.train import TrainConfig, load_policy, policy_windows, train_policy

KP = {"policy.keypoints.targets": "object,goal", "policy.keypoints.steps": 20}


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    from wam.envs.collect import CollectConfig, collect

    root = tmp_path_factory.mktemp("kp") / "push"
    collect(CollectConfig(tasks="push-v3", episodes=4, out=str(root), image_size=32, workers=1),
            progress_bar=False)
    return root


def test_train_fits_the_detector_and_acting_reads_the_same_positions(pushed, tmp_path, capsys):
    cfg = apply_overrides(TrainConfig(), {**POLICY, **KP, "paradigm": "action_only", "data.path": str(pushed),
                                          "out": str(tmp_path / "p")})
    train_policy(cfg, progress=False)
    assert "keypoints (object,goal): median error" in capsys.readouterr().out
    policy, saved = load_policy(tmp_path / "p")
    assert saved.policy.keypoints.targets == "object,goal" and saved.policy.state_dim == 4  # the saved config: proprio
    assert policy.paradigm.parts.state_in.proj_in.in_features == 4 + 4  # the state token reads 2 positions more
    ds = LeRobotDataset(pushed)
    frames = cached_frames(ds, ds.video_keys[0], image_size=32, progress=False).frames
    found = locate_all(policy.keypoints, frames)  # (N, 2, 2): what the training windows were served
    windows = policy_windows(saved, ds, frames, [0], video=False, keypoints=found)
    assert torch.equal(windows[5]["obs.keypoints"][-1], torch.from_numpy(found[5]))
    live = policy.with_keypoints({"obs.image": windows[5]["obs.image"][None]}, torch.zeros(1, 1, 4))  # (1, 1, 8)
    assert torch.allclose(live[0, 0, 4:], torch.from_numpy(found[5]).flatten(), atol=1e-6)  # acting finds the same
    obs = {ds.video_keys[0]: frames[5], "observation.state": np.zeros(4, np.float32), "task": ds.tasks[0]}
    seen, act = [], policy.paradigm.act
    policy.paradigm.act = lambda batch, **kw: seen.append(batch["obs.state"]) or act(batch, **kw)  # noqa: E731
    assert policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(0)).shape == (3, 4)
    assert torch.allclose(seen[0][0, 0, 4:], live[0, 0, 4:], atol=1e-6)  # acting's state token reads the live positions
    from wam.offline_eval import OfflineEvalConfig, offline_eval

    scores = offline_eval(OfflineEvalConfig(policy=str(tmp_path / "p"), windows_per_episode=4), progress=False)["keypoints"]
    assert set(scores) == {"object", "goal"} and scores["goal"]["push-v3"]["frames"] > 0
    assert np.isfinite(scores["object"]["push-v3"]["median_px"])

def test_keypoints_need_the_recorded_state_and_a_state_token(tmp_path):
    write_dataset(tmp_path / "data", lengths=(20, 22, 24, 26))
    cfg = apply_overrides(TrainConfig(), {**POLICY, **KP, "paradigm": "action_only", "data.path": str(tmp_path / "data"),
                                          "out": str(tmp_path / "a")})
    with pytest.raises(DatasetError, match="policy.keypoints.targets=object,goal reads observation.environment_state"):
        train_policy(cfg, progress=False)
    assert not (tmp_path / "a" / "config.yaml").exists()  # refused before anything trains
    with pytest.raises(ConfigError, match="state_frames"):
        apply_overrides(TrainConfig(), {**KP, "paradigm": "joint", "policy.integration": "latent_frame",
                                        "policy.latent_frame.state_frames": True}).check()


def test_keypoint_scores_are_one_for_the_projections_themselves(pushed):
    from wam.envs.target_masks import dataset_centres
    from wam.paradigms.keypoints import keypoint_scores

    ds = LeRobotDataset(pushed)
    exact = dataset_centres(ds, "corner2", 32, ("object",)) / 32 * 2 - 1  # (N, 1, 2) in [-1, 1]
    got = keypoint_scores(exact, ds, [0, 1], ds.video_keys[0], 32, ["object"])["object"]["push-v3"]
    assert got["r2"] == 1.0 and got["median_px"] == 0.0 and got["frames"] == sum(ds.episodes[e].length for e in (0, 1))
    off = keypoint_scores(exact + 0.25, ds, [0, 1], ds.video_keys[0], 32, ["object"])["object"]["push-v3"]
    assert off["median_px"] == pytest.approx(4.0, abs=1e-3) and off["r2"] < 1


def test_xyz_r2_scores_the_lift_in_recorded_units(pushed):
    """With `lifted` (the lift's standardised xyz), eval-offline's scores add `xyz_r2` against the recorded xyz."""
    from wam.envs.target_masks import dataset_centres
    from wam.paradigms.keypoints import keypoint_scores, world_positions

    ds = LeRobotDataset(pushed)
    exact = dataset_centres(ds, "corner2", 32, ("object",)) / 32 * 2 - 1  # (N, 1, 2)
    world, mean, std = world_positions(ds, ["object"], [2, 3])  # standardised on episodes 2-3, scored on 0-1
    perfect = (world - mean) / std
    got = keypoint_scores(exact, ds, [0, 1], ds.video_keys[0], 32, ["object"], perfect, [2, 3])["object"]["push-v3"]
    assert got["xyz_r2"] == 1.0
    shifted = perfect + np.array([0.5, 0.0, 0.0], np.float32)  # half a training std off in x
    off = keypoint_scores(exact, ds, [0, 1], ds.video_keys[0], 32, ["object"], shifted, [2, 3])["object"]["push-v3"]
    assert off["xyz_r2"] < 0.99
    assert "xyz_r2" not in keypoint_scores(exact, ds, [0, 1], ds.video_keys[0], 32, ["object"])["object"]["push-v3"]


def test_world_positions_are_served_and_found_alike(pushed, tmp_path, capsys):
    """`policy.keypoints.world`: the state reads 3 world numbers a target, the same in windows and when acting."""
    from wam.paradigms.keypoints import as_state

    cfg = apply_overrides(TrainConfig(), {**POLICY, **KP, "policy.keypoints.world": True, "paradigm": "action_only",
                                          "data.path": str(pushed), "out": str(tmp_path / "w")})
    train_policy(cfg, progress=False)
    assert "keypoints lifted to the world: R^2 on training frames object" in capsys.readouterr().out
    policy, _ = load_policy(tmp_path / "w")
    assert policy.paradigm.parts.state_in.proj_in.in_features == 4 + 6 and policy.keypoints.lift.abs().sum() > 0
    ds = LeRobotDataset(pushed)
    frames = cached_frames(ds, ds.video_keys[0], image_size=32, progress=False).frames
    served = as_state(policy.keypoints, locate_all(policy.keypoints, frames))  # (N, 2, 3)
    live = policy.with_keypoints({"obs.image": torch.from_numpy(np.array(frames[5:6])).permute(0, 3, 1, 2)[None]},
                                 torch.zeros(1, 1, 4))
    assert served.shape[1:] == (2, 3) and torch.allclose(live[0, 0, 4:], torch.from_numpy(served[5]).flatten(), atol=1e-5)
    from wam.offline_eval import OfflineEvalConfig, offline_eval

    scores = offline_eval(OfflineEvalConfig(policy=str(tmp_path / "w"), windows_per_episode=4), progress=False)["keypoints"]
    assert all(isinstance(s.get("xyz_r2"), (float, type(None))) and "xyz_r2" in s for s in scores["object"].values())


def test_per_task_lifts_are_served_and_found_alike(pushed, tmp_path, capsys):
    """`policy.keypoints.per_task`: the windows read each task's own lift; acting finds the same from the live
    frame and the instruction, and an instruction the lift never saw gets the pooled map."""
    from wam.paradigms.keypoints import as_state, dataset_task_rows

    cfg = apply_overrides(TrainConfig(), {**POLICY, **KP, "policy.keypoints.world": True, "policy.keypoints.per_task": True,
                                          "paradigm": "action_only", "data.path": str(pushed), "out": str(tmp_path / "t")})
    train_policy(cfg, progress=False)
    assert "keypoints lifted per task (1 of 1 instructions): R^2 on training frames object" in capsys.readouterr().out
    policy, _ = load_policy(tmp_path / "t")
    assert policy.keypoints.task_lift.shape == (1, 2, 3, 3) and policy.keypoints.task_lift.abs().sum() > 0
    ds = LeRobotDataset(pushed)
    frames = cached_frames(ds, ds.video_keys[0], image_size=32, progress=False).frames
    found = locate_all(policy.keypoints, frames)
    rows = dataset_task_rows(policy.keypoints, ds, policy.text_encoder.encode(list(ds.tasks)))
    served, pooled = as_state(policy.keypoints, found, rows), as_state(policy.keypoints, found)  # (N, 2, 3)
    assert (rows == 0).all() and not np.allclose(served, pooled, atol=1e-3)
    obs = {ds.video_keys[0]: frames[5], "observation.state": np.zeros(4, np.float32), "task": ds.tasks[0]}
    seen, act = [], policy.paradigm.act
    policy.paradigm.act = lambda batch, **kw: seen.append(batch["obs.state"]) or act(batch, **kw)  # noqa: E731
    policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(0))
    policy.predict_action_chunk({**obs, "task": "push the puck somewhere new"}, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(seen[0][0, -1, 4:], torch.from_numpy(served[5]).flatten(), atol=1e-3)  # z amplifies fp32 noise
    assert torch.allclose(seen[1][0, -1, 4:], torch.from_numpy(pooled[5]).flatten(), atol=1e-5)


@pytest.fixture(scope="module")
def two_views(tmp_path_factory):
    from wam.envs.collect import CollectConfig, collect

    root = tmp_path_factory.mktemp("kp2") / "push"
    collect(CollectConfig(tasks="push-v3", episodes=3, out=str(root), image_size=32, workers=1, views="corner"),
            progress_bar=False)
    return root


def test_a_second_view_is_filmed_served_and_read_when_acting(two_views, pushed, tmp_path):
    """`policy.keypoints.views`: `wam collect --views` films more cameras, the detector reads the policy's camera and
    those, training windows and acting see the same positions, and `wam eval` renders the views for it."""
    ds = LeRobotDataset(two_views)
    assert ds.video_keys == ["observation.images.corner2", "observation.images.corner"]
    cfg = apply_overrides(TrainConfig(), {**POLICY, **KP, "policy.keypoints.views": "corner", "paradigm": "action_only",
                                          "data.path": str(two_views), "out": str(tmp_path / "v")})
    train_policy(cfg, progress=False)
    policy, _ = load_policy(tmp_path / "v")
    assert policy.view_keys == ["observation.images.corner"] and policy.paradigm.parts.state_in.proj_in.in_features == 4 + 8
    main, side = (cached_frames(ds, k, image_size=32, progress=False).frames for k in ds.video_keys)
    found = locate_all(policy.keypoints, np.concatenate([main, side], -1))  # (N, 2, 4): what the windows were served
    image = lambda f: torch.from_numpy(np.array(f[5:6])).permute(0, 3, 1, 2)[None]  # noqa: E731  (1, 1, 3, H, W)
    both = torch.cat([image(main), image(side)], -3)  # (1, 1, 6, H, W): what the detector reads
    live = policy.with_keypoints({"obs.image": image(main), "obs.detector": both}, torch.zeros(1, 1, 4))
    assert torch.allclose(live[0, 0, 4:], torch.from_numpy(found[5]).flatten(), atol=1e-6)
    with pytest.raises(WamError, match="obs.detector"):
        policy.with_keypoints({"obs.image": image(main)}, torch.zeros(1, 1, 4))
    obs = {ds.video_keys[0]: main[5], "observation.state": np.zeros(4, np.float32), "task": ds.tasks[0]}
    with pytest.raises(WamError, match="observation.images.corner"):
        policy.predict_action_chunk(obs)
    seen, act = [], policy.paradigm.act
    policy.paradigm.act = lambda batch, **kw: seen.append(batch["obs.state"]) or act(batch, **kw)  # noqa: E731
    policy.reset()
    assert policy.predict_action_chunk({**obs, ds.video_keys[1]: side[5]}).shape == (3, 4)
    assert torch.allclose(seen[0][0, 0, 4:], live[0, 0, 4:], atol=1e-6)
    with pytest.raises(WamError, match="remote client"):
        policy.predict_from_history(main[5:6], np.zeros((1, 4), np.float32), ds.tasks[0])
    from wam.evaluate import EvalConfig, evaluate

    result = evaluate(EvalConfig(policy=str(tmp_path / "v"), episodes=1, max_steps=3, videos=0, out=str(tmp_path / "e")),
                      progress=False)
    assert result["overall"]["episodes"] == 1
    bad = apply_overrides(TrainConfig(), {**POLICY, **KP, "policy.keypoints.views": "corner", "paradigm": "action_only",
                                          "data.path": str(pushed), "out": str(tmp_path / "b")})
    with pytest.raises(DatasetError, match="observation.images.corner, which .* has not got"):
        train_policy(bad, progress=False)
    assert not (tmp_path / "b" / "config.yaml").exists()  # refused before anything trains


def test_the_detector_can_read_larger_frames_than_the_policy(pushed, tmp_path):
    """`policy.keypoints.image_size`: the detector reads the recorded frames at its own size (here 64 px, resized from
    a 32 px dataset), the policy at its own; the training windows and acting see the same positions."""
    cfg = apply_overrides(TrainConfig(), {**POLICY, **KP, "policy.keypoints.image_size": 64, "paradigm": "action_only",
                                          "data.path": str(pushed), "out": str(tmp_path / "s")})
    train_policy(cfg, progress=False)
    policy, saved = load_policy(tmp_path / "s")
    assert policy.keypoints.size == 64 and policy.paradigm.image_size == 32 and policy.detector_frames
    ds = LeRobotDataset(pushed)
    big = cached_frames(ds, ds.video_keys[0], image_size=64, progress=False).frames
    found = locate_all(policy.keypoints, big)  # (N, 2, 2): what the windows were served
    small = cached_frames(ds, ds.video_keys[0], image_size=32, progress=False).frames
    obs = {ds.video_keys[0]: small[5], "observation.state": np.zeros(4, np.float32), "task": ds.tasks[0]}
    batch = {"obs.image": torch.from_numpy(np.array(small[5:6])).permute(0, 3, 1, 2)[None],
             "obs.detector": torch.from_numpy(np.array(big[5:6])).permute(0, 3, 1, 2)[None]}
    live = policy.with_keypoints(batch, torch.zeros(1, 1, 4))
    assert torch.allclose(live[0, 0, 4:], torch.from_numpy(found[5]).flatten(), atol=1e-6)
    with pytest.raises(WamError, match="obs.detector"):
        policy.with_keypoints({"obs.image": batch["obs.image"]}, torch.zeros(1, 1, 4))
    seen, act = [], policy.paradigm.act
    policy.paradigm.act = lambda batch, **kw: seen.append(batch["obs.state"]) or act(batch, **kw)  # noqa: E731
    assert policy.predict_action_chunk(obs, generator=torch.Generator().manual_seed(0)).shape == (3, 4)
    assert torch.allclose(seen[0][0, 0, 4:], live[0, 0, 4:], atol=1e-6)  # acting resized the live frame to 64 px
    with pytest.raises(WamError, match="remote client"):
        policy.predict_from_history(small[5:6], np.zeros((1, 4), np.float32), ds.tasks[0])


def test_the_detector_learns_from_the_labelled_demos_only(pushed, tmp_path, monkeypatch):
    """Episodes trained with their actions hidden (`data.actionless_per_task`) stand for action-free video: their
    recorded object / goal positions must not teach the detector (the held-out ones never do)."""
    import wam.train as train_module

    seen = []
    real = train_module.fit_keypoints
    monkeypatch.setattr(train_module, "fit_keypoints", lambda policy, ds, frames, eps, *a: seen.append(list(eps))
                        or real(policy, ds, frames, eps, *a))
    cfg = apply_overrides(TrainConfig(), {**POLICY, **KP, "paradigm": "action_only", "data.path": str(pushed),
                                          "data.episodes_per_task": 1, "data.actionless_per_task": 1,
                                          "out": str(tmp_path / "p")})
    train_policy(cfg, progress=False)
    split = json.loads((tmp_path / "p" / "split.json").read_text())
    assert split["actionless"] and seen == [[e for e in split["train"] if e not in split["actionless"]]]
    assert split["labelled"] == seen[0]  # what `wam eval-offline` reads the lift's standardisation from


def test_runs_of_one_seed_share_one_detector_fit(pushed, tmp_path, capsys):
    """A study's arms of one seed fit the same detector: the second run loads it from the dataset's cache instead of
    fitting it again, and it is the detector a fresh fit gives; another seed fits its own."""
    import shutil

    from wam.data.frames import cache_dir

    def run(name: str, **extra) -> dict:
        cfg = apply_overrides(TrainConfig(), {**POLICY, **KP, "paradigm": "action_only", "data.path": str(pushed),
                                              "out": str(tmp_path / name), **extra})
        train_policy(cfg, progress=False)
        policy, _ = load_policy(tmp_path / name)
        return {k: v.clone() for k, v in policy.keypoints.state_dict().items()}

    shutil.rmtree(cache_dir(LeRobotDataset(pushed)) / "keypoints", ignore_errors=True)
    first = run("a")
    assert "fitted earlier" not in capsys.readouterr().out
    again = run("b", **{"optim.lr": 1e-3})  # another arm: other training settings, the same detector settings
    assert "keypoints: the detector fitted earlier from these settings, frames and seed" in capsys.readouterr().out
    assert all(torch.equal(first[k], again[k]) for k in first)
    shutil.rmtree(cache_dir(LeRobotDataset(pushed)) / "keypoints")
    fresh = run("c")  # what the reuse stands for: fitting again gives the same weights
    assert "fitted earlier" not in capsys.readouterr().out and all(torch.equal(first[k], fresh[k]) for k in first)
    other = run("d", **{"optim.seed": 1})
    assert "fitted earlier" not in capsys.readouterr().out
    assert not all(torch.equal(first[k], other[k]) for k in first)
    for saved in (cache_dir(LeRobotDataset(pushed)) / "keypoints").glob("detector_*.pt"):
        saved.write_bytes(b"damaged")  # a file that cannot be read is fitted again, not a crash
    assert all(torch.equal(first[k], v) for k, v in run("e").items())
    assert "could not be read (UnpicklingError); fitting the detector again" in capsys.readouterr().out
