"""`wam pretrain`, `wam train`, `wam eval-offline` and `wam eval` end to end on the tiny diffusers presets
(configs/backbones/{wan,cosmos}_tiny.yaml: random weights made on the fly), every paradigm on both."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")

from tests.conftest import IMAGE_KEY, write_dataset  # noqa: E402
from wam.cli import main  # noqa: E402
from wam.imagination import load_world_model  # noqa: E402
from wam.paradigms import VARIANTS  # noqa: E402
from wam.train import load_policy  # noqa: E402

SMALL = ["--optim.steps=2", "--optim.batch_size=2", "--optim.val_every=2", "--optim.ckpt_every=2",
         "--optim.log_every=2", "--text_encoder=hash"]
POLICY = ["--policy.future=4,8", "--policy.chunk=4", "--policy.sample_steps=2", "--data.image_size=32"]
FAST = {"wan": [("representation", "tokens"), ("joint", "tokens")],
        "cosmos": [("representation", "tokens"), ("joint", "latent_frame")]}


@pytest.fixture(scope="module", params=["wan", "cosmos"])
def world_model(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    write_dataset(root / "data", lengths=(16, 18, 20, 22))
    argv = ["pretrain", "--config", f"configs/backbones/{request.param}_tiny.yaml", f"--data.path={root / 'data'}",
            f"--out={root / 'wm'}", *SMALL]
    assert main(argv) == 0
    return request.param, root


def _train(root, out, paradigm, integration, *extra) -> None:
    argv = ["train", f"--init={root / 'wm'}", f"--paradigm={paradigm}", f"--policy.integration={integration}",
            f"--data.path={root / 'data'}", f"--out={out}", *SMALL, *POLICY, *extra]
    assert main(argv) == 0


def _acts_deterministically(run) -> None:
    policy, cfg = load_policy(run)
    obs = {IMAGE_KEY: np.full((32, 32, 3), 90, np.uint8), "observation.state": np.zeros(4, np.float32), "task": "push"}
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    a = policy.predict_action_chunk(obs, g())
    assert a.shape == (4, 4) and np.isfinite(a).all()
    again, _ = load_policy(run)
    assert np.array_equal(a, again.predict_action_chunk(obs, g()))


def test_pretrain_then_train_then_eval_offline(world_model, tmp_path):
    kind, root = world_model
    wm, cfg = load_world_model(root / "wm")
    assert cfg.model.backbone.kind == kind and type(wm).__name__ == "BackboneWorldModel"
    clip = root / "imagined.gif"
    assert main(["imagine", str(root / "wm"), "--dataset", str(root / "data"), "--episode", "0",
                 "--out", str(clip)]) == 0 and clip.stat().st_size > 0
    for paradigm, integration in FAST[kind]:
        run = tmp_path / f"{paradigm}_{integration}"
        _train(root, run, paradigm, integration)
        _acts_deterministically(run)
        assert main(["eval-offline", f"--policy={run}", "--windows_per_episode=2"]) == 0
        assert np.isfinite(json.loads((run / "eval_offline.json").read_text())["mse"])


def test_mot_lora_and_checkpointing_train_from_the_world_model(world_model, tmp_path, capsys):
    kind, root = world_model
    if kind != "wan":
        pytest.skip("the action expert (MoT) is Wan's")
    run = tmp_path / "mot"
    _train(root, run, "representation", "tokens", "--policy.backbone.mot=true", "--policy.lora.rank=2",
           "--policy.backbone.checkpointing=true")
    policy, cfg = load_policy(run)
    assert cfg.policy.backbone.mot and cfg.policy.lora.rank == 2
    names = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert any("lora_A" in n for n in names) and any("action_blocks" in n for n in names)
    assert not any(n.endswith("to_q.base_layer.weight") and "action_blocks" not in n for n in names)
    _acts_deterministically(run)


@pytest.mark.slow  # latent actions need `wam pretrain --latent_actions=true`, implemented for backbone.kind=wam only
@pytest.mark.parametrize("paradigm,integration", [v for v in VARIANTS if v[1] != "latent_actions"])
def test_every_variant(world_model, tmp_path, paradigm, integration):
    _, root = world_model
    _train(root, tmp_path / "p", paradigm, integration)
    _acts_deterministically(tmp_path / "p")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["wan", "cosmos"])
def test_closed_loop_eval(kind, tmp_path):
    """`wam eval` in Meta-World: a tiny representation-only policy on the diffusers backbone rolls out."""
    from wam.envs.collect import CollectConfig, collect

    collect(CollectConfig(tasks="reach-v3", episodes=2, out=str(tmp_path / "d"), image_size=32, workers=1),
            progress_bar=False)
    run = tmp_path / "p"
    argv = ["train", "--paradigm=representation", f"--policy.backbone.kind={kind}", f"--data.path={tmp_path / 'd'}",
            "--data.val_fraction=0.5", f"--out={run}", *SMALL, *POLICY]
    assert main(argv) == 0
    assert main(["eval", f"--policy={run}", "--episodes=1", "--workers=1", "--max_steps=8", "--videos=0"]) == 0
    info = json.loads((run / "eval" / "eval_info.json").read_text())
    assert info["overall"]["episodes"] == 1 and len(info["episodes"]) == 1
