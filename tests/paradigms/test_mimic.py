"""mimic: the actions read video features held at the fixed noise level `policy.mimic.feature_noise`, in training
and when acting; a level outside [0, 1) is refused."""

from __future__ import annotations

import pytest
import torch

from tests.paradigms.test_contract import batch, perturbed, tiny
from wam.cli import main
from wam.errors import ConfigError
from wam.paradigms.settings import MimicConfig


def record_times(p) -> list[dict[str, float | None]]:
    """Per backbone pass: each group's flow time (None for clean groups)."""
    seen: list[dict] = []
    p.parts.backbone.register_forward_pre_hook(
        lambda m, args: seen.append({g.name: None if g.t is None else float(g.t.reshape(-1)[0]) for g in args[0]}))
    return seen


@pytest.mark.parametrize("tau", [0.0, 0.3, 0.7])
def test_actions_read_the_future_at_the_feature_noise_level(tau):
    p = perturbed(tiny("mimic", mimic=MimicConfig(feature_noise=tau), kv_cache=False), 0.05)  # every pass: every group
    seen = record_times(p)
    p.loss(batch(), generator=torch.Generator().manual_seed(0))
    action_passes = [s for s in seen if "action" in s]
    assert len(action_passes) == 1 and action_passes[0]["future"] == pytest.approx(tau)
    seen.clear()
    p.act(batch(), generator=torch.Generator().manual_seed(0))
    video, acting = [s for s in seen if "action" not in s], [s for s in seen if "action" in s]
    assert len(video) == len(acting) == p.cfg.sample_steps
    assert all(s["future"] == pytest.approx(tau) for s in acting)
    # the partial denoise runs from t = 1 down to tau: its last step starts one step above tau
    assert video[0]["future"] == pytest.approx(1.0) and video[-1]["future"] == pytest.approx(tau + (1 - tau) / 2)


def test_the_features_level_changes_the_actions():
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    real = batch()["future.latent"]
    acts = [perturbed(tiny("mimic", mimic=MimicConfig(feature_noise=tau)), 0.05).act(batch(), generator=g(),
                                                                                     given_future=real)
            for tau in (0.0, 0.6)]
    assert not torch.allclose(*acts, atol=1e-3)


@pytest.mark.parametrize("tau", [1.0, -0.1, 1.5])
def test_feature_noise_outside_0_1_is_refused(tau, tmp_path, capsys):
    with pytest.raises(ConfigError, match="policy.mimic.feature_noise"):
        tiny("mimic", mimic=MimicConfig(feature_noise=tau))
    assert main(["train", "--paradigm=mimic", f"--policy.mimic.feature_noise={tau}", f"--out={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "policy.mimic.feature_noise" in err[0]
