"""wam.runs.precision: forced choices checked, `auto` decided from the (cached) CPU measurement, old
`optim.bf16` configs still load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from wam.config import parse_config
from wam.errors import ConfigError
from wam.runs import precision as P
from wam.train import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty cache and no decision remembered from earlier tests."""
    monkeypatch.setenv("WAM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(P, "_CHOSEN", {})
    return tmp_path / "precision.json"


def fake_measurement(path: Path, matmul: float, conv: float) -> None:
    path.write_text(json.dumps({P.machine_key(): {"matmul_speedup": matmul, "conv_speedup": conv,
                                                  "bf16_speedup": (matmul * conv) ** 0.5, "capability": "TEST",
                                                  "measured": "then"}}))


@pytest.mark.parametrize("matmul, conv, expected", [(2.0, 1.5, "bf16"), (0.02, 0.05, "fp32"),
                                                    (2.0, 0.7, "fp32"), (1.05, 1.05, "fp32"), (1.8, 0.9, "bf16")])
def test_auto_on_the_cpu_follows_the_measurement(fresh, matmul, conv, expected):
    fake_measurement(fresh, matmul, conv)
    prec = P.choose_precision("auto", "cpu")
    assert prec.name == expected
    assert "auto" in prec.reason and "(cached)" in prec.reason and f"x{matmul:.2f}" in prec.line()


def test_measured_once_then_cached_per_isa_setting(fresh, monkeypatch):
    first = P.cpu_measurement()
    assert not first.get("cached") and first["matmul_fp32_ms"] > 0 and first["conv_bf16_ms"] > 0
    assert P.cpu_measurement()["cached"]
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # another kernel set: measured again, kept beside
    assert not P.cpu_measurement().get("cached")
    assert len(json.loads(fresh.read_text())) == 2


def test_the_choice_is_made_once_a_process(fresh):
    fake_measurement(fresh, 2.0, 2.0)
    first = P.choose_precision("auto", "cpu")
    fake_measurement(fresh, 0.1, 0.1)
    assert P.choose_precision("auto", "cpu") is first


def test_forced_choices(fresh):
    assert P.choose_precision("fp32", "cpu").autocast().__class__.__name__ == "nullcontext"
    bf16 = P.choose_precision("bf16", "cpu")
    assert bf16.dtype == torch.bfloat16 and "asked" in bf16.reason
    with bf16.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with pytest.raises(ConfigError, match="fp16.*CPU"):
        P.choose_precision("fp16", "cpu")
    with pytest.raises(ConfigError, match="'fp8' is not a precision"):
        P.choose_precision("fp8", "cpu")


def test_cuda_choices_from_the_gpu_generation(fresh, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Old GPU")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (7, 0))
    with pytest.raises(ConfigError, match="Old GPU has no bf16"):
        P.choose_precision("bf16", torch.device("cuda"))
    assert P.choose_precision("auto", torch.device("cuda")).name == "fp32"
    monkeypatch.setattr(P, "_CHOSEN", {})
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (9, 0))
    assert P.choose_precision("auto", torch.device("cuda")).name == "bf16"


def test_old_bf16_key_still_loads(tmp_path, capsys):
    old = parse_config(TrainConfig, ["--config", str(ROOT / "docs/runs/mw5/joint/config.yaml")])  # bf16: true
    assert old.optim.precision == "auto"
    assert "optim.bf16' is retired" in capsys.readouterr().err
    assert parse_config(TrainConfig, ["--optim.bf16=false"]).optim.precision == "fp32"
    assert parse_config(TrainConfig, ["--optim.bf16=false", "--optim.precision=bf16"]).optim.precision == "bf16"
    with pytest.raises(ConfigError, match="optim.bf16"):
        parse_config(TrainConfig, ["--optim.bf16=maybe"])
    with pytest.raises(ConfigError, match="--optim.precision"):
        parse_config(TrainConfig, ["--optim.precision=half"])


def test_a_run_says_what_it_chose_and_why(fresh, tmp_path, capsys):
    from wam.trainer import runtime_report  # what train() calls first

    fake_measurement(fresh, 0.05, 0.03)  # a CPU without native bf16
    assert runtime_report(tmp_path, torch.device("cpu"), "auto").name == "fp32"
    info = json.loads((tmp_path / "runtime.json").read_text())
    assert info["precision"] == "fp32" and "not clearly faster" in info["why"] and info["device"] == "cpu"
    out = capsys.readouterr().out
    assert "precision: fp32 (auto: bf16 not clearly faster" in out and "OMP_WAIT_POLICY" in out


def test_a_run_resumed_in_other_arithmetic_keeps_the_earlier_record(fresh, tmp_path):
    """runtime.json is written at each start: a run resumed on another machine keeps what its first steps ran in
    (`earlier`), so a study can tell a cell that changed arithmetic half-way; a resume in the same arithmetic adds
    nothing."""
    from wam.trainer import runtime_report

    fake_measurement(fresh, 0.05, 0.03)  # fp32 here
    before = {"device": "cpu", "precision": "bf16", "why": "", "torch": torch.__version__, "threads": 2, "cores": 2}
    for name, recorded in (("moved", before), ("same", {**before, "precision": "fp32"})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "runtime.json").write_text(json.dumps(recorded))
        runtime_report(tmp_path / name, torch.device("cpu"), "auto")
    moved = json.loads((tmp_path / "moved" / "runtime.json").read_text())
    assert moved["precision"] == "fp32" and moved["earlier"] == [{"device": "cpu", "precision": "bf16",
                                                                  "torch": torch.__version__}]
    assert "earlier" not in json.loads((tmp_path / "same" / "runtime.json").read_text())
