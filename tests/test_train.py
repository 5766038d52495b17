"""`wam train` end to end on tiny configs: every registered (paradigm, integration) variant from a pretrain
run, and from scratch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import IMAGE_KEY, write_dataset
from tests.paradigms.test_contract import batch as contract_batch
from tests.paradigms.test_contract import perturbed, tiny
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


def test_a_run_folder_of_another_paradigm_is_refused(pretrained, tmp_path):
    base = {**POLICY, "init": str(pretrained / "wm"), "data.path": str(pretrained / "data"), "out": str(tmp_path / "p")}
    train_policy(apply_overrides(TrainConfig(), {**base, "paradigm": "joint"}), progress=False)
    with pytest.raises(ConfigError, match="holds a 'joint'"):
        train_policy(apply_overrides(TrainConfig(), {**base, "paradigm": "representation"}), progress=False)


def test_bad_train_config(pretrained, tmp_path, capsys):
    with pytest.raises(ConfigError, match="choose one of"):
        apply_overrides(TrainConfig(), {"paradigm": "magic"}).check()
    cfg = apply_overrides(TrainConfig(), {**POLICY, "data.image_size": 48, "init": str(pretrained / "wm"),
                                          "data.path": str(pretrained / "data"), "out": str(tmp_path / "x")})
    with pytest.raises(ConfigError, match="pretrained on 32 px"):
        train_policy(cfg, progress=False)


# -- tasks learned from video alone (data.video_only_tasks) --------------------------------------
MW_TASKS = {"tasks": ("reach the goal", "push the puck"), "env_tasks": ("reach-v3", "push-v3")}


def _grads(p) -> list[torch.Tensor]:
    return [q.grad for q in p.parameters() if q.requires_grad and q.grad is not None]


@pytest.mark.parametrize("paradigm,integration", list(VARIANTS))
def test_video_only_samples_give_no_action_gradient(paradigm, integration):
    """A batch whose actions are all missing (zeroed, padded) trains nothing through any action loss."""
    silent = {"video_weight": 0.0, "lam_weight": 0.0, "code_weight": 0.0}
    data = {**contract_batch(), "action_is_pad": torch.ones(4, 3, dtype=torch.bool)}
    data["action"] = torch.zeros_like(data["action"])
    p = perturbed(tiny(paradigm, integration=integration, **silent), 0.05)
    loss, metrics = p.loss(data, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert metrics["action_loss"].item() == 0 and all(g.abs().max() == 0 for g in _grads(p))
    if VARIANTS[(paradigm, integration)].video:  # the same batch still trains the video model
        p = perturbed(tiny(paradigm, integration=integration), 0.05)
        p.loss(data, generator=torch.Generator().manual_seed(0))[0].backward()
        assert any(g.abs().max() > 0 for g in _grads(p))


def test_video_only_windows_hide_actions(tmp_path):
    from wam.data.lerobot_format import LeRobotDataset
    from wam.data.windows import WindowDataset, WindowSpec

    write_dataset(tmp_path / "d", lengths=(20, 22, 24), **MW_TASKS)
    ds = LeRobotDataset(tmp_path / "d")
    windows = WindowDataset(ds, WindowSpec(action=(0, 1, 2)), actionless=[1])
    plain = WindowDataset(ds, WindowSpec(action=(0, 1, 2)))
    for i in range(len(windows)):
        s, ref = windows[i], plain[i]
        if s["episode_index"] == 1:
            assert s["action_is_pad"].all() and (s["action"] == 0).all()
        else:
            assert torch.equal(s["action"], ref["action"]) and torch.equal(s["action_is_pad"], ref["action_is_pad"])
            assert torch.equal(s["obs.image"], ref["obs.image"])


def test_train_with_video_only_tasks(pretrained, tmp_path):
    import json

    from wam.data.lerobot_format import LeRobotDataset
    from wam.evaluate import EvalConfig, _tasks_to_run

    write_dataset(tmp_path / "d", lengths=(20, 22, 24, 26), **MW_TASKS)
    cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "joint", "data.path": str(tmp_path / "d"),
                                          "data.video_only_tasks": "push", "out": str(tmp_path / "p")})
    metrics = train_policy(cfg, progress=False)
    assert np.isfinite(metrics["loss"])
    tasks = json.loads((tmp_path / "p/tasks.json").read_text())
    assert tasks["video_only_tasks"] == ["push-v3"] and tasks["env_tasks"] == ["push-v3", "reach-v3"]
    # the action normalisation comes from the labelled task (reach: episodes 0 and 2) only
    policy, _ = load_policy(tmp_path / "p")
    reach = LeRobotDataset(tmp_path / "d").read_columns(["action"], [0, 2])["action"]
    assert np.allclose(policy.normalizer.action_min.numpy(), reach.min(0))
    assert np.allclose(policy.normalizer.action_span.numpy(), reach.max(0) - reach.min(0), atol=1e-6)
    # tasks learned from video are trained tasks: `wam eval` does not refuse them
    assert _tasks_to_run(EvalConfig(policy=str(tmp_path / "p"), tasks="push-v3")) == ["push-v3"]


def test_bad_video_only_tasks(tmp_path):
    write_dataset(tmp_path / "d", lengths=(20, 22), **MW_TASKS)
    base = {**POLICY, "paradigm": "joint", "data.path": str(tmp_path / "d"), "out": str(tmp_path / "p")}
    with pytest.raises(ConfigError, match="does not hold"):
        train_policy(apply_overrides(TrainConfig(), {**base, "data.video_only_tasks": "drawer-open"}), progress=False)
    with pytest.raises(ConfigError, match="every task"):
        train_policy(apply_overrides(TrainConfig(), {**base, "data.video_only_tasks": "reach,push"}), progress=False)
    with pytest.raises(ConfigError, match="unknown Meta-World task"):
        train_policy(apply_overrides(TrainConfig(), {**base, "data.video_only_tasks": "nonsense"}), progress=False)
    with pytest.raises(ConfigError, match="action-conditioned"):
        apply_overrides(PretrainConfig(), {"data.video_only_tasks": "push", "model.action_chunk": 4}).check()


def test_training_is_reproducible_for_a_seed(pretrained, tmp_path):
    """Two runs of the same config and seed on one device give the same weights, whatever the global RNG
    was before (model initialisation included)."""
    from wam.checkpoint import load_checkpoint

    def weights(out: str, seed: int) -> dict:
        torch.manual_seed(len(out))  # the global RNG state before the run differs between runs
        cfg = apply_overrides(TrainConfig(), {**POLICY, "paradigm": "joint", "init": str(pretrained / "wm"),
                                              "data.path": str(pretrained / "data"), "optim.seed": seed,
                                              "optim.steps": 2, "out": str(tmp_path / out)})
        train_policy(cfg, progress=False)
        return load_checkpoint(tmp_path / out).model

    a, b = weights("a", 0), weights("bb", 0)  # before seed_run: different initial weights, so different runs
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
