"""Verified checkpoints: a manifest written last, damaged files refused by name through the real CLI,
resume skipping a damaged latest checkpoint, old checkpoints without a manifest still loading."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from tests.conftest import write_dataset
from tests.test_pretrain import tiny_config
from tests.test_trainer import CFG, Denoiser, Points, collate
from wam.checkpoint import MANIFEST, DamagedCheckpoint, latest_intact, load_checkpoint, resolve_checkpoint
from wam.cli import main
from wam.pretrain import pretrain
from wam.trainer import train


@pytest.fixture(scope="module")
def world_model(tmp_path_factory):
    """A tiny `wam pretrain` run and its dataset (checkpoints at steps 3 and 6)."""
    root = tmp_path_factory.mktemp("ckpt")
    write_dataset(root / "data", lengths=(20, 22, 24, 26))
    pretrain(tiny_config(root / "data", root / "run"), progress=False)
    return root


def _flip(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
    path.write_bytes(bytes(data))


DAMAGE = {
    "corrupt": _flip,
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "zero-byte": lambda p: p.write_bytes(b""),
    "missing": lambda p: p.unlink(),
}
CASES = [(f, d) for f in ("model.safetensors", "ema.safetensors") for d in DAMAGE]
CASES += [("state.json", "corrupt-json"), ("config.yaml", "missing"), (MANIFEST, "missing"), (MANIFEST, "corrupt-json")]


@pytest.mark.parametrize("name,damage", CASES, ids=[f"{f}-{d}" for f, d in CASES])
def test_a_damaged_checkpoint_file_is_one_line_naming_it(world_model, tmp_path, capsys, name, damage):
    run = tmp_path / "run"
    shutil.copytree(world_model / "run", run)
    target = resolve_checkpoint(run) / name
    if damage == "corrupt-json":
        target.write_text(target.read_text()[:-7] + "{,,")
    else:
        DAMAGE[damage](target)
    code = main(["imagine", str(run), "--dataset", str(world_model / "data"), "--steps", "2",
                 "--out", str(tmp_path / "x.mp4")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert str(target) in err[0] and not (tmp_path / "x.mp4").exists()


def test_the_real_cli_reports_a_truncated_checkpoint_without_a_traceback(world_model, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(world_model / "run", run)
    DAMAGE["truncated"](resolve_checkpoint(run) / "model.safetensors")
    done = subprocess.run([sys.executable, "-m", "wam", "imagine", str(run), "--out", str(tmp_path / "x.mp4")],
                          capture_output=True, text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(lines) == 1
    assert lines[0].startswith(f"error: {resolve_checkpoint(run) / 'model.safetensors'} has ")
    assert lines[0].endswith(f"the file is truncated; an intact earlier checkpoint: {run / 'checkpoints/step_000003'}")


def test_the_manifest_lists_every_file_with_size_and_hash(world_model):
    folder = resolve_checkpoint(world_model / "run")
    manifest = json.loads((folder / MANIFEST).read_text())
    on_disk = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)
    assert sorted(manifest["files"]) == on_disk and "optimizer.pt" in on_disk
    assert all(manifest["files"][n]["bytes"] == (folder / n).stat().st_size for n in on_disk)
    assert json.loads((folder / "state.json").read_text())["format"] == 2
    assert not list((world_model / "run/checkpoints").glob(".step_*"))  # no temporary folder left


def test_resume_skips_a_damaged_latest_checkpoint_and_says_so(tmp_path, capsys):
    torch.manual_seed(0)
    straight = Denoiser()
    train(straight, Points(), collate, CFG, tmp_path / "a", "toy", CFG, progress=False, stop_at=10)
    torch.manual_seed(0)
    train(Denoiser(), Points(), collate, CFG, tmp_path / "b", "toy", CFG, progress=False, stop_at=10)
    _flip(tmp_path / "b/checkpoints/step_000010/optimizer.pt")  # only resuming reads this file
    capsys.readouterr()
    resumed = Denoiser()
    train(resumed, Points(), collate, CFG, tmp_path / "b", "toy", CFG, progress=False, stop_at=10)
    err = capsys.readouterr().err
    assert "skipping a damaged checkpoint: " in err and "step_000010/optimizer.pt is corrupt" in err
    assert f"resuming from step 5 (checkpoint {tmp_path / 'b/checkpoints/step_000005'})" in err
    for key, value in straight.state_dict().items():  # resumed exactly from step 5
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_resume_says_where_it_starts_and_refuses_when_nothing_is_intact(tmp_path, capsys):
    train(Denoiser(), Points(), collate, CFG, tmp_path, "toy", CFG, progress=False, stop_at=10)
    for step in (5, 10):
        (tmp_path / f"checkpoints/step_{step:06d}/model.safetensors").write_bytes(b"")
    with pytest.raises(DamagedCheckpoint, match="no intact checkpoint in .*step_000010/model.safetensors has 0 bytes"):
        latest_intact(tmp_path, "toy")


def test_a_save_killed_midway_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    train(Denoiser(), Points(), collate, CFG, tmp_path, "toy", CFG, progress=False, stop_at=5)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("wam.checkpoint.write_manifest", killed)  # dies after the weights, before the manifest
    with pytest.raises(KeyboardInterrupt):
        train(Denoiser(), Points(), collate, CFG, tmp_path, "toy", CFG, progress=False, stop_at=10)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path).state["step"] == 5 and (tmp_path / "checkpoints/.step_000010.tmp").exists()
    assert latest_intact(tmp_path, "toy")[0].state["step"] == 5


def test_a_checkpoint_from_before_manifests_still_loads(world_model, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world_model / "run", run)
    folder = resolve_checkpoint(run)
    (folder / MANIFEST).unlink()
    state = json.loads((folder / "state.json").read_text())
    del state["format"]
    (folder / "state.json").write_text(json.dumps(state))
    assert load_checkpoint(run).manifest is None
    assert main(["imagine", str(run), "--steps", "2", "--out", str(tmp_path / "x.gif")]) == 0
    (folder / "model.safetensors").write_bytes(b"\0" * 100)  # without a manifest: still one line, by name
    assert main(["imagine", str(run), "--out", str(tmp_path / "y.gif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.safetensors cannot be read" in err[0]


def test_a_last_pointer_to_nothing_is_named(world_model, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(world_model / "run", run)
    (run / "checkpoints/last").write_text("step_999999")
    assert main(["imagine", str(run), "--out", str(tmp_path / "x.gif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{run / 'checkpoints/last'} names 'step_999999'" in err[0]
