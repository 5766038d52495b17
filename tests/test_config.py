"""The one config style: dataclass defaults < YAML preset < dotted flags, with clear errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from wam.config import apply_overrides, parse_config, parse_overrides, save_config
from wam.errors import ConfigError


@dataclass
class Inner:
    paradigm: str = "joint"
    steps: int = 10
    offsets: tuple[int, ...] = (0,)


@dataclass
class Outer:
    lr: float = 1e-3
    amp: bool = False
    name: str | None = None
    policy: Inner = field(default_factory=Inner)


def test_defaults_yaml_then_flags(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("lr: 0.01\npolicy:\n  paradigm: inverse\n  steps: 3\n")
    cfg = parse_config(Outer, ["--config", str(preset), "--policy.steps=7", "--amp", "--policy.offsets", "-1,0"])
    assert cfg.lr == 0.01 and cfg.amp is True
    assert cfg.policy == Inner("inverse", 7, (-1, 0))


def test_round_trip_through_saved_yaml(tmp_path):
    cfg = apply_overrides(Outer(), {"policy.paradigm": "representation", "name": "run1"})
    save_config(cfg, tmp_path / "config.yaml")
    assert parse_config(Outer, ["--config", str(tmp_path / "config.yaml")]) == cfg


def test_none_and_bool_values():
    assert apply_overrides(Outer(name="x"), {"name": "none"}).name is None
    assert apply_overrides(Outer(), {"amp": "false"}).amp is False


@pytest.mark.parametrize("argv,needle", [
    (["--policy.paradigmm=joint"], "did you mean policy.paradigm"),
    (["--lr=fast"], "--lr: 'fast' is not a valid float"),
    (["--policy.steps=2.5"], "is not a valid int"),
    (["--amp=maybe"], "is not a valid bool"),
    (["stray"], "unexpected argument 'stray'"),
    (["--config", "/nonexistent.yaml"], "no such file"),
])
def test_bad_overrides(argv, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_config(Outer, argv)


def test_parse_overrides_forms():
    assert parse_overrides(["--a.b=1", "--c", "2", "--flag", "--d-e=3"]) == {"a.b": "1", "c": "2", "flag": "true", "d_e": "3"}
