"""The outside reference policy (wam.reference): its model, its policy contract through WamPolicy,
`wam train --paradigm=conv_reference` then `wam eval` end to end, and its benchmark row."""

from __future__ import annotations

import importlib
import json
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import IMAGE_KEY
from wam.cli import main
from wam.config import apply_overrides
from wam.data.lerobot_format import LeRobotDataset
from wam.data.text import HashTextEncoder
from wam.data.windows import WindowDataset, WindowSpec, make_loader
from wam.envs.collect import CollectConfig, collect
from wam.errors import ConfigError, WamError
from wam.paradigms import VARIANTS, PolicyModelConfig
from wam.policy import WamPolicy
from wam.reference import REFERENCES, ConvReference, SpatialSoftmax, TemporalUnet, random_shift
from wam.train import TrainConfig, load_policy

TINY = {"obs": (-1, 0), "chunk": 3, "sample_steps": 2, "reference.channels": (8, 16), "reference.keypoints": 4,
        "reference.feature": 16, "reference.unet": (16, 32)}
FLAGS = {"data.image_size": 32, "text_encoder": "hash", "optim.steps": 4, "optim.batch_size": 4,
         "optim.val_every": 2, "optim.ckpt_every": 2, "optim.log_every": 2,
         **{f"policy.{k}": ",".join(map(str, v)) if isinstance(v, tuple) else v for k, v in TINY.items()}}


def tiny(**kw) -> ConvReference:
    """The tiny reference; `kw` are dotted keys below `policy` (e.g. `**{"reference.shift": 0}`)."""
    torch.manual_seed(0)
    return ConvReference(apply_overrides(PolicyModelConfig(), {**TINY, **kw}), image_size=32)


def batch(b: int = 4, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"obs.image": torch.randint(0, 256, (b, 2, 3, 32, 32), generator=g, dtype=torch.uint8),
            "obs.state": torch.randn(b, 2, 4, generator=g), "text_emb": torch.randn(b, 384, generator=g),
            "action": torch.rand(b, 3, 4, generator=g) * 2 - 1,
            "action_is_pad": torch.tensor([[False, False, True]] * b)}


def obs(size: int = 32, seed: int = 0, key: str = IMAGE_KEY) -> dict:
    rng = np.random.default_rng(seed)
    return {key: rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
            "observation.state": rng.normal(size=4).astype(np.float32), "task": "push the puck"}


def test_loss_is_finite_and_reaches_every_parameter():
    model = tiny()
    loss, metrics = model.loss(batch())
    assert torch.isfinite(loss) and loss.item() > 0 and "action_loss" in metrics
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_loss_falls_when_overfitting_one_batch():
    model, data = tiny(**{"reference.shift": 0}), batch()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    fixed = lambda: model.loss(data, torch.Generator().manual_seed(0))[0]  # noqa: E731 (same noise and t)
    first = fixed().item()
    for _ in range(60):
        opt.zero_grad()
        fixed().backward()
        opt.step()
    assert fixed().item() < 0.3 * first


def test_the_condition_depends_on_image_state_and_text():
    model = tiny().eval()
    base = model.condition(batch())
    for key, change in (("obs.image", lambda x: 255 - x), ("obs.state", lambda x: x + 1), ("text_emb", lambda x: -x)):
        b = batch()
        b[key] = change(b[key])
        assert not torch.allclose(model.condition(b), base), key
    model.train()  # training shifts the pixels: the condition moves with the augmentation
    assert not torch.allclose(model.condition(batch(), torch.Generator().manual_seed(0)), base)


def test_random_shift_is_a_crop_of_the_padded_image():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    assert torch.equal(random_shift(x, 0), x)
    out = random_shift(x, 2, torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    for i in range(2):
        crops = [padded[i, :, dy:dy + 6, dx:dx + 6] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], c) for c in crops)


def test_spatial_softmax_finds_the_peak():
    pool = SpatialSoftmax(channels=1, keypoints=1)
    with torch.no_grad():
        pool.keys.weight.fill_(1.0), pool.keys.bias.zero_()
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 0, 4] = 50.0  # top row, right column
    assert torch.allclose(pool(x), torch.tensor([[1.0, -1.0]]), atol=1e-4)  # (x, y) in [-1, 1]


@pytest.mark.parametrize("steps", [1, 3, 16])
def test_unet_takes_any_chunk_length(steps):
    net = TemporalUnet(action_dim=4, cond=10, dims=(16, 32, 32))
    out = net(torch.randn(2, steps, 4), torch.rand(2), torch.randn(2, 10))
    assert out.shape == (2, steps, 4) and torch.isfinite(out).all()


def policy_on(root, **kw) -> WamPolicy:
    return WamPolicy(tiny(), LeRobotDataset(root).stats, IMAGE_KEY, HashTextEncoder(), **kw)


def test_policy_contract(tiny_dataset):
    root, _ = tiny_dataset
    policy = policy_on(root, n_action_steps=2)
    policy.record_imagination = True
    chunk = policy.predict_action_chunk(obs())
    stats = LeRobotDataset(root).stats["action"]
    assert chunk.shape == (3, 4) and policy.imagined is None  # it imagines nothing
    assert (chunk >= stats["min"] - 1e-5).all() and (chunk <= stats["max"] + 1e-5).all()
    policy.reset()
    actions = [policy.select_action(obs(seed=i)) for i in range(3)]
    assert all(a.shape == (4,) for a in actions) and len(policy._queue) == 1  # replanned at steps 0 and 2
    assert len(policy._frames) == 2  # the obs history feeds offsets (-1, 0)
    with pytest.raises(WamError, match="takes 32x32"):
        policy.predict_action_chunk(obs(size=40))
    windows = WindowDataset(LeRobotDataset(root), WindowSpec(obs=(-1, 0), action=(0, 1, 2)))
    loss, metrics = policy.loss(next(iter(make_loader(windows, batch_size=4))))  # pixels, uint8, as trained
    assert torch.isfinite(loss) and set(metrics) == {"action_loss"}


def test_config_knows_the_reference_outside_the_registry():
    assert "conv_reference" in REFERENCES and all(name != "conv_reference" for name, _ in VARIANTS)
    apply_overrides(TrainConfig(), {"paradigm": "conv_reference"}).check()
    with pytest.raises(ConfigError, match="conv_reference"):
        apply_overrides(TrainConfig(), {"paradigm": "magic"}).check()
    with pytest.raises(ConfigError, match="--init"):
        apply_overrides(TrainConfig(), {"paradigm": "conv_reference", "init": "runs/wm"}).check()
    with pytest.raises(ConfigError, match="policy.reference.keypoints"):
        apply_overrides(TrainConfig(), {"paradigm": "conv_reference", "policy.reference.keypoints": -1}).check()


def test_train_then_eval_end_to_end(tmp_path):
    collect(CollectConfig(tasks="reach-v3", episodes=2, out=str(tmp_path / "d"), image_size=32, workers=1),
            progress_bar=False)
    run = tmp_path / "ref"
    argv = ["train", "--paradigm=conv_reference", f"--data.path={tmp_path / 'd'}", "--data.val_fraction=0.5",
            f"--out={run}", *[f"--{k}={v}" for k, v in FLAGS.items()]]
    assert main(argv) == 0
    assert not (run / "tokenizer").exists()  # no tokenizer trained: it reads pixels
    assert {"loss", "val_loss", "action_loss"} <= set((run / "log.csv").read_text().splitlines()[0].split(","))
    policy, cfg = load_policy(run)
    assert isinstance(policy.paradigm, ConvReference) and cfg.paradigm == "conv_reference"
    assert policy.paradigm.cfg.reference.unet == (16, 32) and policy.n_action_steps == 1
    again, _ = load_policy(run)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    o = obs(key=policy.image_key)
    assert np.array_equal(policy.predict_action_chunk(o, g()), again.predict_action_chunk(o, g()))
    assert main(["eval", f"--policy={run}", "--episodes=2", "--workers=1", "--max_steps=10", "--videos=1"]) == 0
    info = json.loads((run / "eval/eval_info.json").read_text())
    assert info["overall"]["episodes"] == 2 and info["overall"]["ms_per_chunk"] > 0
    assert (run / "eval/eval_episode_0.mp4").exists() and not list((run / "eval").glob("pred_episode_*"))


def test_benchmark_row_runs():
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    try:
        speed = importlib.import_module("paradigm_speed")
    finally:
        sys.path.pop(0)
    threads = torch.get_num_threads()
    try:
        cfg = apply_overrides(PolicyModelConfig(), {**TINY, "obs": (0,)})
        n, rate, ms = speed.measure(ConvReference(cfg, 64), cfg, Namespace(batch=2, steps=2, repeats=1, device="cpu"))
    finally:
        torch.set_num_threads(threads)
    assert n > 0 and rate > 0 and ms > 0
