"""The shared training loop: exact resume, NaN guard, checkpoints, EMA, schedule, logs."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from wam.checkpoint import load_checkpoint, resolve_checkpoint
from wam.errors import ConfigError, WamError
from wam.trainer import EMA, EpochSampler, OptimConfig, lr_factor, train


class Points(Dataset):
    def __init__(self, n: int = 64):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i]}


def collate(samples):
    return {"x": torch.stack([s["x"] for s in samples])}


class Denoiser(nn.Module):
    """Draws noise in its loss (like flow matching) from the generator the trainer passes, a function of
    (seed, step, micro-batch): resume must give the same noise as a run never stopped."""

    def __init__(self, nan_at: int | None = None):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 3))
        self.calls, self.nan_at = 0, nan_at

    def loss(self, batch, generator=None):
        self.calls += 1
        noise = torch.randn(batch["x"].shape, generator=generator)
        loss = ((self.net(batch["x"] + noise) - batch["x"]) ** 2).mean()
        if self.nan_at is not None and self.calls > self.nan_at:
            loss = loss * float("nan")
        return loss, {"noise_std": noise.std()}


CFG = OptimConfig(steps=20, batch_size=8, lr=1e-2, warmup=3, log_every=2, val_every=4, ckpt_every=5, precision="fp32")


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_killed_and_resumed_run_equals_uninterrupted(tmp_path):
    torch.manual_seed(0)
    straight = Denoiser()
    train(straight, Points(), collate, CFG, tmp_path / "a", "toy", CFG, progress=False)
    torch.manual_seed(0)
    first = Denoiser()
    train(first, Points(), collate, CFG, tmp_path / "b", "toy", CFG, progress=False, stop_at=10)
    assert json.loads((resolve_checkpoint(tmp_path / "b") / "state.json").read_text())["step"] == 10
    resumed = Denoiser()  # a fresh process: new weights, RNG elsewhere
    torch.manual_seed(123)
    train(resumed, Points(), collate, CFG, tmp_path / "b", "toy", CFG, progress=False)
    for key, value in _weights(straight).items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for key in a.ema:
        assert torch.equal(a.ema[key], b.ema[key])
    steps = [int(line.split(",")[0]) for line in (tmp_path / "b/log.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps)) and steps[-1] == 20  # no step logged twice after resume
    assert (tmp_path / "b/curves.png").exists()


def test_nan_loss_stops_without_overwriting_the_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = Denoiser(nan_at=7)
    with pytest.raises(WamError, match="loss is nan at step 7"):
        train(model, Points(), collate, CFG, tmp_path, "toy", CFG, progress=False)
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.state["step"] == 5
    assert all(torch.isfinite(v).all() for v in ckpt.model.values())


def test_checkpoint_of_another_kind_is_refused(tmp_path):
    train(Denoiser(), Points(), collate, CFG, tmp_path, "toy", CFG, progress=False, stop_at=5)
    with pytest.raises(WamError, match="'toy' checkpoint, expected 'wam-world-model'"):
        load_checkpoint(tmp_path, kind="wam-world-model")
    with pytest.raises(WamError, match="no checkpoint"):
        load_checkpoint(tmp_path / "elsewhere")


def test_keeps_only_the_newest_checkpoints(tmp_path):
    train(Denoiser(), Points(), collate, CFG, tmp_path, "toy", CFG, progress=False)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_000015", "step_000020"]


def test_validation_uses_fixed_noise_and_ema(tmp_path):
    """The logged validation loss is the loss of the EMA weights (as saved in the last checkpoint) under the
    fixed noise generator: recomputed here from those weights alone, it matches exactly; the raw weights
    give another value, and the model keeps its raw weights afterwards."""
    val = [collate([Points()[i] for i in range(8)])]
    model = Denoiser()
    metrics = train(model, Points(), collate, CFG, tmp_path, "toy", CFG, val_batches=val, progress=False)
    ckpt = load_checkpoint(tmp_path, kind="toy")
    assert ckpt.state["step"] == CFG.steps  # validated at the last step too, with these EMA weights
    raw = _weights(model)
    ema_model = Denoiser()
    ema_model.load_state_dict(ckpt.ema)
    fixed = lambda m: m.loss(val[0], generator=torch.Generator().manual_seed(1234))[0].item()  # noqa: E731
    assert metrics["val_loss"] == pytest.approx(fixed(ema_model), rel=1e-6)
    std = ema_model.loss(val[0], generator=torch.Generator().manual_seed(1234))[1]["noise_std"].item()
    assert metrics["val_noise_std"] == pytest.approx(std, rel=1e-6)  # each term the loss reports, held out too
    assert metrics["val_loss"] != pytest.approx(fixed(model), rel=1e-3)  # the raw weights differ
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in raw.items())


def test_schedule_warms_up_then_decays():
    cfg = OptimConfig(steps=100, warmup=10, min_lr=0.1)
    assert lr_factor(0, cfg) == pytest.approx(0.1) and lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(55, cfg) == pytest.approx(0.55) and lr_factor(100, cfg) == pytest.approx(0.1)


def test_epoch_sampler_is_a_function_of_the_step():
    full = EpochSampler(20, 4, seed=3)
    it = iter(full)
    order = [next(it) for _ in range(40)]
    later = iter(EpochSampler(20, 4, seed=3, start_step=7))
    assert [next(later) for _ in range(12)] == order[28:40]
    assert sorted(order[:20]) == list(range(20))


def test_ema_applied_restores_weights():
    model = nn.Linear(2, 2)
    ema = EMA(model, 0.5)
    before = _weights(model)
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model, step=100)
    with ema.applied(model):
        assert torch.allclose(model.weight, before["weight"] + 0.5)
    assert torch.allclose(model.weight, before["weight"] + 1.0)


@pytest.mark.parametrize("key", ["log_every", "val_every", "ckpt_every"])
def test_bookkeeping_intervals_below_one_are_refused_with_a_line(key):
    """`--optim.val_every=0` once crashed mid-run with a ZeroDivisionError; it is now refused before training."""
    with pytest.raises(ConfigError, match=f"optim.{key} must be an integer >= 1"):
        OptimConfig(**{key: 0}).check()
