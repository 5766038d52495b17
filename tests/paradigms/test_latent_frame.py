"""Joint + latent_frame (Cosmos Policy): the action chunk packed into one latent frame of the future group."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.paradigms.test_contract import batch, perturbed, tiny
from wam.data.frames import ArrayFrames, episode_starts
from wam.data.lerobot_format import LeRobotDataset
from wam.data.windows import WindowDataset, WindowSpec, collate_windows
from wam.errors import ConfigError
from wam.paradigms import latent_frame
from wam.paradigms.base import next_offset, noise_group
from wam.paradigms.latent_frame import pack_actions, repeat_rows, unpack_actions, value_target
from wam.paradigms.settings import JointConfig, LatentFrameConfig


def test_pack_fills_the_frame_with_copies_and_unpack_averages_them():
    x = torch.arange(1, 13, dtype=torch.float32).reshape(1, 3, 4)  # 12 values, 64 entries: 6 or 5 copies each
    frame = pack_actions(x, (4, 4, 4))
    assert frame.shape == (1, 1, 4, 4, 4)
    counts = torch.bincount(frame.flatten().long(), minlength=13)[1:]
    assert counts.sum() == 64 and counts.min() == 5 and counts.max() == 6  # every entry a real value, no zeros
    assert torch.equal(pack_actions(x, (4, 4, 4)), frame)  # deterministic
    assert torch.equal(unpack_actions(frame, 3, 4), x)
    noise = torch.randn(1, 1, 4, 4, 4)
    flat_noise = noise.flatten()
    mean_of_first = flat_noise[torch.arange(64) % 12 == 0].mean()
    assert torch.allclose(unpack_actions(frame + noise, 3, 4)[0, 0, 0], 1 + mean_of_first)


def test_no_action_tokens_and_the_action_frame_has_its_own_time():
    p = tiny("joint", integration="latent_frame")
    assert p.parts.action_io is None
    assert not any("action_io" in n for n, _ in p.named_parameters())
    assert p.parts.future_times == (2, 4, 6) and next_offset((4, 8, 12, 16)) == 20 and next_offset((3,)) == 6
    assert p.parts.future_shape(5) == (5, 3, 4, 4, 4)
    times = p.parts.future_pos[:, 0].unique().tolist()
    assert times == [2, 4, 6]  # no clash with the obs (-1, 0) or the real future frames


def test_loss_splits_into_weighted_video_and_action_parts():
    p = perturbed(tiny("joint", integration="latent_frame", video_weight=0.5, action_weight=2.0), 0.02)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    loss, m = p.loss(batch(), generator=g())
    assert m["video_loss"] > 0 and m["action_loss"] > 0
    assert torch.allclose(loss, 0.5 * m["video_loss"] + 2.0 * m["action_loss"])


def test_padded_actions_and_frames_do_not_contribute(monkeypatch):
    """The loss's gradient w.r.t. the prediction is zero exactly at padded frames and padded actions' copies."""
    p = perturbed(tiny("joint", integration="latent_frame"), 0.02)
    data = batch()
    data["future_is_pad"][:, 1] = True  # the last real frame; action_is_pad marks step 2 of 3
    run, seen = p.parts.run, {}

    def spy(*args, **kwargs):
        out = run(*args, **kwargs)
        out["future"].retain_grad()
        seen["pred"] = out["future"]
        return out

    monkeypatch.setattr(p.parts, "run", spy)
    p.loss(data, generator=torch.Generator().manual_seed(0))[0].backward()
    grad = seen["pred"].grad  # (B, Tf+1, C, h, w)
    assert grad[:, 1].abs().max() == 0 and grad[:, 0].abs().min() > 0
    step = (torch.arange(64) % 12) // 4  # which action step each entry of the action frame copies
    action = grad[:, 2].reshape(4, 64)
    assert action[:, step == 2].abs().max() == 0 and action[:, step < 2].abs().min() > 0


def test_act_reads_the_action_frame_of_the_denoised_group():
    p = perturbed(tiny("joint", integration="latent_frame"), 0.05)
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    chunk = p.act(batch(2), generator=g())
    future = p.imagine(batch(2), generator=g())
    assert chunk.shape == (2, 3, 4) and future.shape == (2, 2, 4, 4, 4)
    assert torch.equal(p.last_future, future)  # one sampling: the frames denoised beside the actions
    assert not torch.allclose(chunk, torch.zeros_like(chunk))


def test_bad_configs_are_refused_with_a_reason():
    with pytest.raises(ConfigError, match="do not fit"):
        tiny("joint", integration="latent_frame", chunk=20)  # 80 values > 4*4*4
    with pytest.raises(ConfigError, match="policy.joint.independent_t"):
        tiny("joint", integration="latent_frame", joint=JointConfig(independent_t=True))


# -- proprio state as latent frames (Cosmos Policy's state, policy.latent_frame.state_frames) ----------
STATE_FRAMES = LatentFrameConfig(state_frames=True)


def state_batch(b: int = 4) -> dict:
    data = batch(b)
    data["future.state"] = torch.randn(b, 2, 4, generator=torch.Generator().manual_seed(5))
    return data


def test_state_frames_replace_the_state_token():
    p = tiny("joint", integration="latent_frame", latent_frame=STATE_FRAMES)
    assert p.parts.state_in is None and p.parts.obs_times == (-2, -1, 0)  # the state frame first, before obs
    assert p.parts.future_times == (2, 4, 6, 8)  # real frames, the action frame, the future-state frame
    seen = []
    p.parts.backbone.register_forward_pre_hook(lambda m, args: seen.append({g.name: g.tokens.shape[1] for g in args[0]}))
    loss, metrics = p.loss(state_batch(), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and {"action_loss", "video_loss", "state_loss"} <= set(metrics)
    assert seen[0] == {"text": 1, "obs": 3 * 4, "future": 4 * 4}  # (1 state + 2 obs) and (2 + 2) frames of 4 patches
    assert p.act(state_batch(), generator=torch.Generator().manual_seed(0)).shape == (4, 3, 4)
    assert p.last_state.shape == (4, 2, 4) and p.imagine(state_batch()).shape == (4, 2, 4, 4, 4)


def test_the_state_frames_carry_the_proprio():
    """The current state reaches the actions through its frame; the future states are a trained target."""
    p = perturbed(tiny("joint", integration="latent_frame", latent_frame=STATE_FRAMES), 0.05)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    other = state_batch()
    other["obs.state"] = other["obs.state"] + 1
    assert not torch.allclose(p.act(state_batch(), generator=g()), p.act(other, generator=g()), atol=1e-4)
    moved = state_batch()
    moved["future.state"] = moved["future.state"] + 3
    a, b = p.loss(state_batch(), generator=g())[1], p.loss(moved, generator=g())[1]
    assert b["state_loss"] > a["state_loss"]
    past_end = state_batch()
    past_end["future_is_pad"][:] = True  # every future state past the episode's end: nothing to learn from
    assert p.loss(past_end, generator=g())[1]["state_loss"] == 0


def test_state_frames_need_the_latent_frame_integration():
    with pytest.raises(ConfigError, match="policy.latent_frame.state_frames"):
        tiny("joint", latent_frame=STATE_FRAMES)


# -- the value as a latent frame (Cosmos Policy's value, policy.latent_frame.value_frame) --------------
VALUE = LatentFrameConfig(value_frame=True, gamma=0.9)


def value_batch(b: int = 4, lengths=(30, 30, 12, 12), frames=(0, 10, 5, 11)) -> dict:
    return {**batch(b), "frame_index": torch.tensor(frames[:b]), "episode_length": torch.tensor(lengths[:b])}


def test_the_value_target_is_the_discounted_time_to_success_of_each_window(tiny_dataset):
    """Windows of a dataset of known episode lengths (20, 25, 30 frames): the target of the window at frame t
    of an L-frame episode is gamma ** (L - t - chunk) (actions left after the chunk), 1 once the chunk
    reaches the end; and the loss writes exactly 2 V - 1 into every entry of the value frame."""
    root, _ = tiny_dataset
    ds = LeRobotDataset(root)
    latents = np.zeros((75, 4, 4, 4), np.float32)
    windows = WindowDataset(ds, WindowSpec(obs=(0,), future=(2, 4), action=(0, 1, 2)),
                            frames=ArrayFrames(latents, episode_starts(ds)))
    data = collate_windows([windows[i] for i in range(len(windows))])
    p = tiny("joint", integration="latent_frame", latent_frame=VALUE)
    target = p._value_target(data)
    lengths = [20] * 20 + [25] * 25 + [30] * 30
    frames = [t for n in (20, 25, 30) for t in range(n)]
    expected = torch.tensor([0.9 ** max(0, n - t - 3) for n, t in zip(lengths, frames)], dtype=torch.float32)
    torch.testing.assert_close(target, expected)
    assert target[16] == 0.9 and target[17] == 1 and target[19] == 1 and target[0] == pytest.approx(0.9 ** 17)

    seen = {}

    def spy(x0, generator, t=None):
        seen["x0"] = x0
        return noise_group(x0, generator, t)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(latent_frame, "noise_group", spy)
        p.loss(value_batch(), generator=torch.Generator().manual_seed(0))
    v = value_target(torch.tensor([0, 10, 5, 11]), torch.tensor([30, 30, 12, 12]), 3, 0.9)
    torch.testing.assert_close(v, torch.tensor([0.9 ** 27, 0.9 ** 17, 0.9 ** 4, 1.0]))
    written = seen["x0"][:, -1].reshape(4, -1)  # the value frame: every entry the same, 2 V - 1
    torch.testing.assert_close(written, (2 * v - 1)[:, None].expand_as(written))


def test_the_value_frame_is_one_more_predicted_frame():
    p = tiny("joint", integration="latent_frame", latent_frame=LatentFrameConfig(state_frames=True, value_frame=True))
    assert p.parts.future_times == (2, 4, 6, 8, 10)  # real frames, actions, future states, value
    loss, metrics = p.loss({**state_batch(), **{k: v for k, v in value_batch().items() if k in ("frame_index",
                                                                                                "episode_length")}})
    assert torch.isfinite(loss) and {"action_loss", "video_loss", "state_loss", "value_loss"} <= set(metrics)
    chunk = p.act(value_batch(), generator=torch.Generator().manual_seed(0))
    assert chunk.shape == (4, 3, 4) and p.last_value.shape == (4,) and p.last_state.shape == (4, 2, 4)
    p.reset()  # a new episode: nothing of the last one's chunks is left to read (wam eval records last_value)
    assert p.last_value is None and p.last_state is None
    with pytest.raises(ConfigError, match="frame_index and episode_length"):
        p.loss(state_batch())


def test_the_value_loss_is_part_of_the_loss():
    """value_weight scales the value frame's flow loss into the total: weight 0 gives other gradients than 1, and
    moving the value target moves the value loss."""
    grads, losses = {}, {}
    for weight in (0.0, 1.0):
        p = perturbed(tiny("joint", integration="latent_frame",
                           latent_frame=LatentFrameConfig(value_frame=True, value_weight=weight)), 0.02)
        loss, m = p.loss(value_batch(), generator=torch.Generator().manual_seed(0))
        loss.backward()
        grads[weight] = torch.cat([q.grad.flatten() for q in p.parameters() if q.grad is not None])
        losses[weight] = (loss, m)
    assert not torch.allclose(grads[0.0], grads[1.0])
    loss, m = losses[1.0]
    assert m["value_loss"] > 0 and torch.allclose(loss, m["video_loss"] + m["action_loss"] + m["value_loss"])
    p = perturbed(tiny("joint", integration="latent_frame", latent_frame=VALUE), 0.02)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = p.loss(value_batch(), generator=g())[1]
    b = p.loss(value_batch(frames=(29, 29, 11, 11)), generator=g())[1]  # other targets, same frames and actions
    assert abs(b["value_loss"] - a["value_loss"]) > 0.1  # the target is trained (the frames see each other too)


def test_best_of_n_executes_the_highest_valued_candidate():
    """value_candidates=3 samples 3 chunks per row in one batch: the same as acting once on the batch with each
    row repeated 3 times (same generator), then keeping, per row, the candidate of highest predicted value."""
    cfg = LatentFrameConfig(value_frame=True, value_candidates=3)
    p = perturbed(tiny("joint", integration="latent_frame", latent_frame=cfg), 0.05)
    g = lambda: torch.Generator().manual_seed(2)  # noqa: E731
    best = p.act(value_batch(), generator=g())
    best_value, best_future = p.last_value, p.last_future
    p.cfg.latent_frame.value_candidates = 1
    every = p.act(repeat_rows(value_batch(), 3), generator=g())  # (12, Ta, Da): row b's candidates at 3b .. 3b+2
    values = p.last_value.reshape(4, 3)
    assert (values.max(1).values - values.min(1).values).min() > 1e-4  # the candidates really differ in value
    pick = values.argmax(1)
    torch.testing.assert_close(best_value, values.max(1).values)
    torch.testing.assert_close(best, every.reshape(4, 3, 3, 4)[torch.arange(4), pick])
    torch.testing.assert_close(best_future, p.last_future.reshape(4, 3, 2, 4, 4, 4)[torch.arange(4), pick])
    assert torch.equal(p.act(value_batch(), generator=g()), p.act(value_batch(), generator=g()))  # deterministic


def test_value_settings_are_refused_with_a_reason():
    with pytest.raises(ConfigError, match="policy.latent_frame.value_frame"):
        tiny("joint", latent_frame=LatentFrameConfig(value_frame=True))
    with pytest.raises(ConfigError, match="policy.latent_frame.value_candidates"):
        tiny("joint", integration="latent_frame", latent_frame=LatentFrameConfig(value_frame=True, value_candidates=0))
    with pytest.raises(ConfigError, match="needs policy.latent_frame.value_frame=true"):
        tiny("joint", integration="latent_frame", latent_frame=LatentFrameConfig(value_candidates=2))
    for gamma in (0.0, 1.5):
        with pytest.raises(ConfigError, match=r"policy.latent_frame.gamma .* \(0, 1\]"):
            tiny("joint", integration="latent_frame", latent_frame=LatentFrameConfig(value_frame=True, gamma=gamma))


def test_the_variants_reads_column_covers_every_latent_frame_key(capsys):
    """`wam variants` says joint + latent_frame reads `policy.latent_frame`: every key of that section (the value
    keys included) lives there and changes what the strategy does (its loss or its actions)."""
    from dataclasses import fields

    from wam.cli import main

    assert main(["variants"]) == 0
    line = next(row for row in capsys.readouterr().out.splitlines() if row.split()[:2] == ["joint", "latent_frame"])
    assert line.split()[5] == "policy.latent_frame"
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    data = {**state_batch(), "frame_index": torch.tensor([0, 10, 5, 11]), "episode_length": torch.tensor([30] * 4)}

    def outputs(**kw):
        p = perturbed(tiny("joint", integration="latent_frame", latent_frame=LatentFrameConfig(**kw)), 0.05)
        return p.loss(data, generator=g())[0], p.act(data, generator=g())

    changed = {"state_frames": ({}, {"state_frames": True}), "value_frame": ({}, {"value_frame": True})}
    changed |= {k: ({"value_frame": True}, {"value_frame": True, k: v})
                for k, v in (("gamma", 0.5), ("value_weight", 3.0), ("value_candidates", 3))}
    assert set(changed) == {f.name for f in fields(LatentFrameConfig)}  # a new key needs a row here
    for key, (before, after) in changed.items():
        (la, aa), (lb, ab) = outputs(**before), outputs(**after)
        assert not torch.allclose(la, lb) or not torch.allclose(aa, ab), key
