"""`wam train` end to end on tiny configs: every registered (paradigm, integration) variant from a pretrain
run, and from scratch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import IMAGE_KEY, write_dataset
from tests.test_pretrain import TINY
from wam.cli import main
from wam.config import apply_overrides
from wam.errors import ConfigError
from wam.paradigms import VARIANTS
from wam.pretrain import PretrainConfig, pretrain
from wam.train import TrainConfig, load_policy, train_policy

POLICY = {"data.image_size": 32, "tokenizer.steps": 10, "tokenizer.batch_size": 16, "tokenizer.base_channels": 8,
          "tokenizer.latent_channels": 4, "policy.backbone.depth": 2, "policy.backbone.width": 64,
          "policy.future": (2, 4), "policy.chunk": 3, "policy.sample_steps": 2, "optim.steps": 4,
          "optim.batch_size": 4, "optim.val_every": 2, "optim.ckpt_every": 2, "optim.log_every": 2,
          "text_encoder": "hash"}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    write_dataset(root / "data", lengths=(20, 22, 24, 26))
    cfg = apply_overrides(PretrainConfig(), {**TINY, "data.path": str(root / "data"), "out": str(root / "wm")})
    pretrain(cfg, progress=False)
    return root


@pytest.mark.parametrize("paradigm,integration", list(VARIANTS))
def test_every_variant_trains_from_the_world_model(pretrained, tmp_path, paradigm, integration):
    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": paradigm, "policy.integration": integration,
                                          "init": str(pretrained / "wm"), "data.path": str(pretrained / "data"),
                                          "out": str(tmp_path / "p")})
    metrics = train_policy(cfg, progress=False)
    assert np.isfinite(metrics["loss"]) and "val_loss" in metrics
    policy, saved = load_policy(tmp_path / "p")
    assert saved.paradigm == paradigm and saved.policy.integration == integration
    assert saved.policy.backbone.width == 64
    obs = {IMAGE_KEY: np.zeros((32, 32, 3), np.uint8), "observation.state": np.zeros(4, np.float32),
           "task": "push the puck"}
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    again, _ = load_policy(tmp_path / "p")
    assert np.array_equal(policy.predict_action_chunk(obs, g()), again.predict_action_chunk(obs, g()))


def test_action_only_from_scratch_via_cli(pretrained, tmp_path):
    argv = ["train", "--paradigm=action_only", f"--data.path={pretrained / 'data'}", f"--out={tmp_path / 'b'}"]
    argv += [f"--{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in POLICY.items()]
    assert main(argv) == 0
    assert (tmp_path / "b/tokenizer/tokenizer.json").exists()  # trained its own tokenizer


def test_a_reused_tokenizer_defines_the_saved_config(pretrained, tmp_path):
    """`tokenizer.path` with fields unlike the config's defaults: the run's config must describe the
    tokenizer used, or the checkpoint cannot be loaded again (a real bug: base_channels 16 vs 32)."""
    wm_tokenizer = pretrained / "wm" / "tokenizer"
    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "action_only", "tokenizer.base_channels": 32,
                                          "tokenizer.path": str(wm_tokenizer), "data.path": str(pretrained / "data"),
                                          "out": str(tmp_path / "p")})
    train_policy(cfg, progress=False)
    policy, saved = load_policy(tmp_path / "p")
    assert saved.tokenizer.base_channels == TINY["tokenizer.base_channels"] != 32


def test_bad_train_config(pretrained, tmp_path, capsys):
    with pytest.raises(ConfigError, match="choose one of"):
        apply_overrides(TrainConfig(), {"paradigm": "magic"}).check()
    cfg = apply_overrides(TrainConfig(), {**POLICY, "data.image_size": 48, "init": str(pretrained / "wm"),
                                          "data.path": str(pretrained / "data"), "out": str(tmp_path / "x")})
    with pytest.raises(ConfigError, match="pretrained on 32 px"):
        train_policy(cfg, progress=False)
