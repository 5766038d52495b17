"""scripts/tokenizer_sweep.py: each setting trains a tokenizer on the probe's training episodes only, then probes it."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from tests.scripts.conftest import load_script
from wam.nn.tokenizer import TokenizerConfig


@pytest.fixture(scope="module")
def sweep():
    return load_script("tokenizer_sweep")


@pytest.fixture(scope="module")
def reach5(tmp_path_factory):
    from wam.envs.collect import CollectConfig, collect

    out = tmp_path_factory.mktemp("sweep") / "reach5"
    collect(CollectConfig(tasks="reach-v3", episodes=5, seed=0, out=str(out), image_size=32, workers=1),
            progress_bar=False)
    return out


def test_every_setting_is_a_valid_tokenizer(sweep):
    for name, fields in sweep.SETTINGS.items():
        cfg = TokenizerConfig(**fields).check()
        assert name.startswith(f"{cfg.image_size}_d{cfg.downsample}")


def test_the_tokenizer_never_trains_on_frames_the_probe_holds_out(sweep, reach5):
    from wam.data.frames import episode_starts
    from wam.data.lerobot_format import LeRobotDataset

    ds = LeRobotDataset(reach5)
    starts = episode_starts(ds)
    rows = sweep.training_rows(ds, 0.2)
    assert rows.tolist() == list(range(starts[0], starts[4]))  # 5 episodes: the last one is the probe's held-out
    assert set(sweep.training_rows(ds, 0.5)) == set(range(starts[0], starts[2]))  # ceil(2.5) = 3 held out


def test_a_setting_is_trained_probed_and_not_redone(sweep, reach5, tmp_path, monkeypatch, capsys):
    argv = ["tokenizer_sweep.py", "--data", str(reach5), "--out", str(tmp_path), "--steps", "2", "--only", "64_d8",
            "--probe", "steps=5", "--plot", str(tmp_path / "sweep.png")]
    monkeypatch.setattr(sys, "argv", argv)
    sweep.main()
    entry = json.loads((tmp_path / "sweep.json").read_text())[0]
    assert entry["name"] == "64_d8" and entry["steps"] == 2 and set(entry["probe"]) == {"reach-v3"}
    assert np.isfinite(entry["cpu_ms_per_frame"]) and "| 64_d8 | 8x8x8 |" in capsys.readouterr().out
    assert "r2_goal_pixels" in entry["probe"]["reach-v3"] and (tmp_path / "sweep.png").stat().st_size > 10_000
    weights = (tmp_path / "64_d8" / "tokenizer.safetensors").stat().st_mtime_ns
    sweep.main()  # resumed: the finished setting is read back, not trained again
    assert (tmp_path / "64_d8" / "tokenizer.safetensors").stat().st_mtime_ns == weights
    monkeypatch.setattr(sys, "argv", argv + ["--probe", "stepz=5"])
    with pytest.raises(Exception, match="stepz"):  # a misspelt probe option fails before any training
        sweep.main()
