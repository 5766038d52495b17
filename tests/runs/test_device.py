"""wam.runs.device: names checked, absent devices refused on one line, batches moved."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wam.cli import main
from wam.errors import ConfigError
from wam.runs.device import check_device, resolve_device, to_device


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:1", "mps", "CPU"])
def test_known_names(name):
    assert check_device(name) == name.lower()


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:x", "tpu", ""])
def test_unknown_names(name):
    with pytest.raises(ConfigError, match="is not a device; choose auto, cpu, cuda"):
        check_device(name)


def test_absent_devices_are_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "mps")
    with pytest.raises(ConfigError, match="--device=cuda: no CUDA device here"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="2 CUDA device.*0..1"):
        resolve_device("cuda:2")


def test_to_device_moves_nested_tensors():
    batch = {"x": torch.ones(2), "task": ["a", "b"], "pair": (torch.zeros(1), 3)}
    moved = to_device(batch, torch.device("meta"))
    assert moved["x"].device.type == "meta" and moved["pair"][0].device.type == "meta"
    assert moved["task"] == ["a", "b"] and moved["pair"][1] == 3


@pytest.mark.parametrize("argv, needle", [
    (["train", "--device=tpu"], "--device: 'tpu' is not a device"),
    (["pretrain", "--optim.precision=fp8"], "--optim.precision: 'fp8' is not a precision"),
    (["eval", "--policy=x", "--precision=half"], "--precision: 'half' is not a precision"),
    (["eval-offline", "--policy=x", "--device=gpu"], "--device: 'gpu' is not a device"),
])
def test_bad_device_or_precision_is_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_cuda_without_one_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "--device=cuda", f"--out={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no CUDA device here" in err and len(err.splitlines()) == 1


# -- every tensor on the module's device ------------------------------------------------------------
# With the default device set to "meta", a tensor made without `device=` lands there and mixing it
# with the model's CPU tensors fails: what a model made on the CPU by mistake would do on a GPU.

def test_world_model_makes_no_tensor_off_its_device():
    from wam.models.world_model import VideoWorldModel, WorldModelConfig
    from wam.nn.tokenizer import FrameAutoencoder, TokenizerConfig
    from wam.nn.transformer import BackboneConfig

    wm = VideoWorldModel(WorldModelConfig(backbone=BackboneConfig(depth=1, width=64)),
                         FrameAutoencoder(TokenizerConfig(image_size=32, latent_channels=4, downsample=4)))
    c, g = wm.tokenizer.cfg.latent_channels, wm.grid
    batch = {"obs.latent": torch.randn(2, 1, c, g, g), "future.latent": torch.randn(2, 4, c, g, g),
             "future_is_pad": torch.zeros(2, 4, dtype=torch.bool), "text_emb": torch.randn(2, 384)}
    frames, text = torch.zeros(1, 1, 3, 32, 32, dtype=torch.uint8), torch.randn(1, 384)
    with torch.device("meta"):
        wm.train()
        assert wm.loss(batch)[0].device.type == "cpu"
        assert wm.imagine(frames, text, steps=1, guidance=2.0).device.type == "cpu"


@pytest.mark.parametrize("name,integration", [("joint", "tokens"), ("inverse_dynamics", "latent_actions"),
                                              ("hierarchical", "tokens"), ("joint", "latent_frame")])
def test_paradigms_and_policy_make_no_tensor_off_their_device(name, integration, tiny_dataset):
    from tests.paradigms.test_contract import batch, tiny
    from tests.test_policy import obs, policy_for

    p, b = tiny(name, integration=integration), batch()
    one = {k: v[:1] for k, v in b.items()}
    policy = policy_for(tiny_dataset[0], name, integration=integration).to_runtime("cpu", "bf16")
    inputs = {"obs.image": torch.zeros(2, 2, 3, 32, 32, dtype=torch.uint8), "obs.state": torch.zeros(2, 2, 4),
              "text_emb": torch.randn(2, 384)}  # the text encoder (data side) makes CPU tensors on purpose
    with torch.device("meta"):
        p.train()
        assert p.loss(b)[0].device.type == "cpu"
        p.eval()
        with torch.no_grad():
            assert p.act(one).device.type == "cpu"
        out = policy.act_on_batch(inputs)  # tensors in, tensors out on the policy's device
    assert out.shape == (2, policy.chunk, 4) and out.device == policy.device and out.dtype == torch.float32
    chunk = policy.predict_action_chunk(obs())  # numpy at the environment boundary
    assert isinstance(chunk, np.ndarray) and chunk.shape == (policy.chunk, 4)
