"""Flow matching on straight paths (rectified flow), separate from any network.

    x_t = (1 - t) * x0 + t * noise        t = 0: data, t = 1: noise
    v   = d x_t / dt = noise - x0         the network predicts v from (x_t, t)

Training: `t = sample_time(B)`, `x_t = interpolate(x0, noise, t)`, `flow_loss(net(x_t, t), x0, noise)`.
Sampling: `euler_sample(lambda x, t: net(x, t), noise, steps)` integrates from t=1 down to t=0 (or
to `t_end`: a partial denoise); a dict of groups is integrated together. The one sampler of wam.
`t` may be (B,) or carry more leading dims, e.g. (B, T) for one noise level per frame (diffusion
forcing); it is broadcast over the trailing dims of x.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
from torch import Tensor

from wam.errors import ConfigError

TIME_KINDS = ("logit_normal", "uniform")
_EPS = 1e-5  # keeps sampled t inside the open interval (0, 1)


def _expand(t: Tensor | float, like: Tensor) -> Tensor:
    """t (leading dims of `like`, or scalar) -> shape broadcastable against `like`."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    return t.reshape(t.shape + (1,) * (like.dim() - t.dim()))


def noise_like(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    return gaussian(x.shape, generator, x.device, x.dtype)


def gaussian(shape: Sequence[int], generator: torch.Generator | None = None, device: torch.device | str | None = None,
             dtype: torch.dtype | None = None) -> Tensor:
    """Standard normal noise on `device`, drawn on the generator's device (a seeded CPU generator then
    gives the same noise whatever device the model runs on)."""
    where = generator.device if generator is not None else device
    return torch.randn(tuple(shape), generator=generator, dtype=dtype, device=where).to(device)


def interpolate(x0: Tensor, noise: Tensor, t: Tensor | float) -> Tensor:
    t = _expand(t, x0)
    return (1 - t) * x0 + t * noise


def inpaint(x_t: Tensor, known: Tensor, noise: Tensor, t: Tensor | float) -> Tensor:
    """x_t (B, N, ...) with its first P = known.shape[1] entries replaced by `known` noised to t
    along its own path (`noise[:, :P]`): sampling with a known prefix (RePaint-style inpainting)."""
    p, t = known.shape[1], torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device).expand(x_t.shape[0])
    return torch.cat([interpolate(known.to(x_t.dtype), noise[:, :p], t), x_t[:, p:]], 1)


def velocity_target(x0: Tensor, noise: Tensor) -> Tensor:
    return noise - x0


def sample_time(batch: int, generator: torch.Generator | None = None, kind: str = "logit_normal",
                device: torch.device | str | None = None, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """(batch,) flow times in (0, 1): logit-normal (SD3: sigmoid of N(mean, std)) or uniform."""
    if kind == "logit_normal":
        t = torch.sigmoid(mean + std * gaussian((batch,), generator, device))
    elif kind == "uniform":
        t = torch.rand(batch, generator=generator, device=generator.device if generator else device).to(device)
    else:
        raise ConfigError(f"unknown flow time distribution {kind!r}; choose one of {TIME_KINDS}")
    return t.clamp(_EPS, 1 - _EPS)


State = TypeVar("State", Tensor, dict[str, Tensor])


@torch.no_grad()
def euler_sample(velocity_fn: Callable[[State, Tensor], State], x1: State, steps: int,
                 t_start: float = 1.0, t_end: float = 0.0, fixed: dict[str, Tensor] | None = None) -> State:
    """Integrate dx/dt = velocity_fn(x_t, t (B,)) from t_start (noise x1) to t_end (data). `x1` is one
    tensor, or several groups integrated together ({name: tensor}, velocities returned the same way).
    `fixed[name]` (B, P, ...): that group's first P entries are known (real-time chunking): before
    every step they are set on their own noise path (`inpaint`), so the rest is generated to continue
    them, and they come out exactly as given."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"euler_sample needs steps >= 1, got {steps!r}")
    times = torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64, device="cpu").tolist()  # host-side
    first = x1 if isinstance(x1, Tensor) else next(iter(x1.values()))
    noise = {k: x1[k] for k in fixed or {}}  # a fixed group's prefix follows its own noise path
    x = x1
    for t, t_next in zip(times, times[1:]):
        x = _inpainted(x, fixed, noise, t)
        v = velocity_fn(x, torch.full((first.shape[0],), t, dtype=first.dtype, device=first.device))
        x = x + (t_next - t) * v if isinstance(x, Tensor) else {k: x[k] + (t_next - t) * v[k] for k in x}
    return _inpainted(x, fixed, noise, t_end)


def _inpainted(x: State, fixed: dict[str, Tensor] | None, noise: dict[str, Tensor], t: float) -> State:
    if not noise:
        return x
    return {k: inpaint(x[k], fixed[k], noise[k], t) if k in noise else x[k] for k in x}


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error; `mask` (leading dims of x, bool or weights) keeps only the elements it
    marks (e.g. drops padded frames) and averages over those alone (0 when it keeps nothing)."""
    err = (pred.float() - target.float()).square()
    if mask is None:
        return err.mean()
    m = _expand(mask, err).expand_as(err)
    return (err * m).sum() / m.sum().clamp_min(1e-12)


def flow_loss(pred_v: Tensor, x0: Tensor, noise: Tensor, mask: Tensor | None = None) -> Tensor:
    """`masked_mse` to the velocity target."""
    return masked_mse(pred_v, velocity_target(x0, noise), mask)
