"""wam.runs.device: names checked, absent devices refused on one line, batches moved."""

from __future__ import annotations

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
