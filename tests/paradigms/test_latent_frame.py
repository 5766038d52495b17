"""Joint + latent_frame (Cosmos Policy): the action chunk packed into one latent frame of the future group."""

from __future__ import annotations

import pytest
import torch

from tests.paradigms.test_contract import batch, perturbed, tiny
from wam.errors import ConfigError
from wam.paradigms.base import next_offset
from wam.paradigms.latent_frame import pack_actions, unpack_actions
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
