"""Flow matching helpers: the straight path, time sampling, Euler integration, the masked loss."""

from __future__ import annotations

import pytest
import torch

from wam.errors import ConfigError
from wam.nn.flow import euler_sample, flow_loss, interpolate, noise_like, sample_time, velocity_target


def test_interpolate_endpoints_and_broadcast() -> None:
    x0, noise = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    assert torch.equal(interpolate(x0, noise, torch.zeros(3)), x0)
    assert torch.equal(interpolate(x0, noise, torch.ones(3)), noise)
    t = torch.tensor([0.0, 0.5, 1.0])
    mid = interpolate(x0, noise, t)
    torch.testing.assert_close(mid[1], (x0[1] + noise[1]) / 2)
    per_frame = interpolate(x0, noise, torch.tensor([[0.0] * 4, [1.0] * 4, [0.0, 1.0, 0.0, 1.0]]))  # (B, T)
    assert torch.equal(per_frame[0], x0[0]) and torch.equal(per_frame[1], noise[1])
    assert torch.equal(per_frame[2, 1], noise[2, 1]) and torch.equal(per_frame[2, 2], x0[2, 2])
    assert torch.equal(velocity_target(x0, noise), noise - x0)


def test_noise_like_is_reproducible() -> None:
    x = torch.zeros(2, 3, dtype=torch.float64)
    a, b = noise_like(x, torch.Generator().manual_seed(1)), noise_like(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.dtype == torch.float64 and a.shape == x.shape and a.std() > 0


@pytest.mark.parametrize("steps", [1, 10])
def test_euler_recovers_x0_with_exact_velocity(steps: int) -> None:
    x0, noise = torch.randn(4, 3, 2, dtype=torch.float64), torch.randn(4, 3, 2, dtype=torch.float64)
    constant = euler_sample(lambda x, t: noise - x0, noise, steps)
    torch.testing.assert_close(constant, x0, rtol=0, atol=1e-12)
    # the velocity field of a straight path read off x_t alone: v = (x_t - x0) / t
    seen: list[torch.Tensor] = []

    def field(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(t)
        return (x - x0) / t.view(-1, 1, 1)

    torch.testing.assert_close(euler_sample(field, noise, steps), x0, rtol=0, atol=1e-12)
    assert len(seen) == steps and seen[0].shape == (4,) and torch.all(seen[0] == 1.0)
    assert all(t.min() > 0 for t in seen)


def test_euler_integrates_groups_together_and_stops_at_t_end() -> None:
    """Several groups in one dict integrate exactly as each alone (the paradigms' joint sampling), and a
    partial denoise to t_end lands on the straight path's point x_t_end = (1 - t_end) x0 + t_end noise."""
    g = torch.Generator().manual_seed(0)
    x0 = {k: torch.randn(2, 3, dtype=torch.float64, generator=g) for k in ("future", "action")}
    noise = {k: torch.randn(2, 3, dtype=torch.float64, generator=g) for k in x0}
    field = lambda x, t: {k: (x[k] - x0[k]) / t.view(-1, 1) for k in x}  # noqa: E731
    together = euler_sample(field, noise, 4, t_end=0.25)
    for k in x0:
        alone = euler_sample(lambda x, t: (x - x0[k]) / t.view(-1, 1), noise[k], 4, t_end=0.25)  # noqa: B023
        torch.testing.assert_close(together[k], alone, rtol=0, atol=0)
        torch.testing.assert_close(together[k], 0.75 * x0[k] + 0.25 * noise[k], rtol=0, atol=1e-12)


def test_euler_rejects_bad_steps() -> None:
    for steps in (0, -1, 2.5):
        with pytest.raises(ValueError):
            euler_sample(lambda x, t: x, torch.zeros(1, 2), steps)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["logit_normal", "uniform"])
def test_sample_time(kind: str) -> None:
    t = sample_time(10_000, torch.Generator().manual_seed(0), kind=kind)
    assert t.shape == (10_000,) and (t > 0).all() and (t < 1).all()
    assert torch.equal(t, sample_time(10_000, torch.Generator().manual_seed(0), kind=kind))
    assert not torch.equal(t, sample_time(10_000, torch.Generator().manual_seed(1), kind=kind))
    assert abs(t.mean().item() - 0.5) < 0.02
    if kind == "logit_normal":  # concentrated in the middle, unlike uniform
        assert ((t > 0.25) & (t < 0.75)).float().mean() > 0.6
    with pytest.raises(ConfigError):
        sample_time(3, kind="beta")


def test_flow_loss_respects_mask() -> None:
    x0, noise = torch.zeros(2, 3, 4), torch.ones(2, 3, 4)  # target velocity = 1
    pred = torch.ones(2, 3, 4)
    pred[:, 2] = 100.0  # wildly wrong on a padded frame
    assert flow_loss(pred, x0, noise) > 100
    mask = torch.tensor([[True, True, False], [True, True, False]])  # (B, T): drop frame 2
    assert flow_loss(pred, x0, noise, mask) == 0
    pred[0, 0, 0] = 3.0  # squared error 4 on one of 16 kept elements
    torch.testing.assert_close(flow_loss(pred, x0, noise, mask), torch.tensor(4.0 / 16))
    torch.testing.assert_close(flow_loss(pred, x0, noise, mask.float()), torch.tensor(4.0 / 16))
    assert flow_loss(pred, x0, noise, torch.zeros(2, 3, dtype=torch.bool)) == 0  # nothing kept: 0, not NaN
    pred.requires_grad_(True)
    flow_loss(pred, x0, noise, mask).backward()
    assert pred.grad[:, 2].abs().sum() == 0 and pred.grad[0, 0, 0] > 0
