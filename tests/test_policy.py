"""The policy contract: normalisation, action queue, ensembling, observation checks, training batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import IMAGE_KEY
from tests.paradigms.test_contract import tiny
from wam.data.lerobot_format import LeRobotDataset
from wam.data.text import HashTextEncoder
from wam.data.windows import WindowDataset, WindowSpec, make_loader
from wam.errors import WamError
from wam.policy import Normalizer, WamPolicy


def policy_for(root, name="representation", integration="tokens", **kw) -> WamPolicy:
    ds = LeRobotDataset(root)
    return WamPolicy(tiny(name, integration=integration), ds.stats, IMAGE_KEY, HashTextEncoder(), **kw)


def obs(size: int = 32) -> dict:
    rng = np.random.default_rng(0)
    return {IMAGE_KEY: rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
            "observation.state": rng.normal(size=4).astype(np.float32), "task": "push the puck"}


def test_normalizer_round_trip(tiny_dataset):
    root, _ = tiny_dataset
    norm = Normalizer(LeRobotDataset(root).stats)
    u = torch.rand(5, 4, generator=torch.Generator().manual_seed(0))
    actions = norm.action_min + u * norm.action_span  # inside the dataset's range (outside is clamped)
    assert torch.allclose(norm.unaction(norm.action(actions)), actions, atol=1e-5)
    assert norm.unaction(torch.full((1, 4), 3.0)).allclose(norm.action_min + norm.action_span)  # clamped
    assert norm.action(norm.action_min).eq(-1).all()


def test_forward_on_dataset_windows(tiny_dataset):
    root, _ = tiny_dataset
    policy = policy_for(root, "joint")
    windows = WindowDataset(LeRobotDataset(root), WindowSpec(obs=(-1, 0), future=(2, 4), action=(0, 1, 2)))
    loss, metrics = policy(next(iter(make_loader(windows, batch_size=4))))
    assert torch.isfinite(loss) and {"action_loss", "video_loss"} <= set(metrics)


def test_queue_replans_every_n_action_steps(tiny_dataset, monkeypatch):
    root, _ = tiny_dataset
    policy = policy_for(root, n_action_steps=2)
    calls = []
    real = policy.predict_action_chunk
    monkeypatch.setattr(policy, "predict_action_chunk", lambda o, **kw: calls.append(1) or real(o, **kw))
    actions = [policy.select_action(obs()) for _ in range(5)]
    assert len(calls) == 3 and all(a.shape == (4,) for a in actions)
    policy.reset()
    policy.select_action(obs())
    assert len(calls) == 4  # a reset empties the queue


def test_chunks_come_back_in_dataset_units(tiny_dataset, monkeypatch):
    """The paradigm's normalised chunk is mapped back with the dataset's [min, max]: -1 -> min, 1 -> max,
    linear in between (the paradigm's output is replaced by known values, so the mapping itself is tested;
    the real model's output would pass any range check: `unaction` clamps)."""
    root, _ = tiny_dataset
    policy = policy_for(root)
    known = torch.stack([torch.full((4,), v) for v in (-1.0, 0.0, 0.5)])[None]  # (1, Ta=3, Da=4) normalised
    monkeypatch.setattr(policy.paradigm, "act", lambda batch, **kw: known)
    chunk = policy.predict_action_chunk(obs())
    lo, hi = (np.asarray(LeRobotDataset(root).stats["action"][k], np.float32) for k in ("min", "max"))
    assert chunk.shape == (3, 4)
    assert np.allclose(chunk, [lo, (lo + hi) / 2, lo + 0.75 * (hi - lo)], atol=1e-5)


def test_temporal_ensembling_replans_every_step(tiny_dataset, monkeypatch):
    root, _ = tiny_dataset
    policy = policy_for(root, ensemble=0.5)
    chunks = iter([np.full((3, 4), v, np.float32) for v in (0.0, 1.0, 2.0)])
    monkeypatch.setattr(policy, "predict_action_chunk", lambda o, **kw: next(chunks))
    assert policy.select_action(obs())[0] == 0.0
    w = np.exp(-0.5 * np.arange(2))
    assert policy.select_action(obs())[0] == pytest.approx((w * [0.0, 1.0]).sum() / w.sum())


def test_reset_resets_the_paradigm(tiny_dataset):
    root, _ = tiny_dataset
    policy = policy_for(root, "hierarchical")
    policy.predict_action_chunk(obs())
    assert policy.paradigm._plan is not None  # the subgoal is cached between chunks
    policy.reset()
    assert policy.paradigm._plan is None


@pytest.mark.parametrize("change,needle", [
    (lambda o: o.update({IMAGE_KEY: o[IMAGE_KEY].astype(np.float32)}), "uint8"),
    (lambda o: o.update({IMAGE_KEY: np.zeros((40, 40, 3), np.uint8)}), "takes 32x32"),
    (lambda o: o.update({"observation.state": np.zeros(7, np.float32)}), r"shape \(4,\)"),
    (lambda o: o.pop("task"), "needs"),
])
def test_bad_observations_are_refused(tiny_dataset, change, needle):
    root, _ = tiny_dataset
    o = obs()
    change(o)
    with pytest.raises(WamError, match=needle):
        policy_for(root).predict_action_chunk(o)


def test_obs_history_feeds_past_offsets(tiny_dataset):
    root, _ = tiny_dataset
    policy = policy_for(root)  # tiny config: obs offsets (-1, 0)
    first, second = obs(), obs()
    second[IMAGE_KEY] = 255 - first[IMAGE_KEY]
    policy._remember(first)
    early = policy._obs_batch("push the puck")["obs.image"][0]  # (To, 3, H, W)
    assert torch.equal(early[0], early[1])  # one step seen: the earliest frame is repeated
    policy._remember(second)
    frames = policy._obs_batch("push the puck")["obs.image"][0]
    assert torch.equal(frames[0], early[0]) and not torch.equal(frames[1], frames[0])
    assert torch.equal(frames[1], torch.from_numpy(second[IMAGE_KEY]).permute(2, 0, 1))
    policy.reset()
    assert len(policy._frames) == 0


def test_select_action_keeps_history_between_replans(tiny_dataset):
    root, _ = tiny_dataset
    policy = policy_for(root, n_action_steps=3)
    for _ in range(4):
        policy.select_action(obs())
    assert len(policy._frames) == policy.history == 2  # every step joins the history, bounded


@pytest.mark.parametrize("name,integration", [("joint", "tokens"), ("joint", "latent_frame"), ("hierarchical", "tokens"),
                                              ("inverse_dynamics", "tokens"), ("action_only", "tokens")])
def test_imagined_frames_are_recorded_where_the_paradigm_imagines(tiny_dataset, name, integration):
    root, _ = tiny_dataset
    policy = policy_for(root, name, integration)
    policy.record_imagination = True
    policy.predict_action_chunk(obs())
    if name == "action_only":
        assert policy.imagined is None
    else:
        assert policy.imagined.shape == (2, 32, 32, 3) and policy.imagined.dtype == np.uint8
    if name == "hierarchical":  # the next call acts on the cached plan: nothing newly imagined to show
        policy.predict_action_chunk(obs())
        assert policy.imagined is None


def test_select_action_draws_its_noise_from_the_given_generator(tiny_dataset):
    root, _ = tiny_dataset
    policy = policy_for(root, "joint", n_action_steps=1)

    def rollout(seed: int) -> np.ndarray:
        policy.reset()
        torch.manual_seed(seed + 100)  # the global RNG must not matter
        g = torch.Generator().manual_seed(seed)
        return np.stack([policy.select_action(obs(), generator=g) for _ in range(3)])

    assert np.array_equal(rollout(0), rollout(0)) and not np.array_equal(rollout(0), rollout(1))


@pytest.mark.parametrize("name,keeps", [("joint", True), ("mimic", False)])
def test_a_committed_prefix_is_kept_or_refused_as_the_paradigm_declares(tiny_dataset, name, keeps):
    """Real-time chunking: `keeps_prefix` paradigms return the committed actions first (in dataset units);
    the others refuse with one line instead of silently ignoring them."""
    policy = policy_for(tiny_dataset[0], name)
    policy.reset(generator=torch.Generator().manual_seed(0))
    committed = np.array([[0.3, -0.2, 0.1, 0.4], [0.2, 0.0, -0.1, 0.3]], np.float32)  # (P, Da) dataset units
    if keeps:
        chunk = policy.predict_action_chunk(obs(), prefix=committed)
        assert np.allclose(chunk[:2], committed, atol=1e-4)
    else:
        with pytest.raises(WamError, match="cannot keep committed actions"):
            policy.predict_action_chunk(obs(), prefix=committed)
