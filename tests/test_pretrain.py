"""`wam pretrain`, `wam imagine` and `wam imagine-eval` end to end on a tiny synthetic dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import drop_column, write_dataset
from wam.cli import main
from wam.config import apply_overrides
from wam.data.lerobot_format import LeRobotDataset
from wam.errors import WamError
from wam.imagination import load_world_model
from wam.pretrain import PretrainConfig, pretrain, split_episodes

TINY = {
    "data.image_size": 32, "tokenizer.steps": 20, "tokenizer.batch_size": 16, "tokenizer.base_channels": 8,
    "tokenizer.latent_channels": 4, "model.backbone.depth": 2, "model.backbone.width": 64,
    "model.future": (2, 4), "model.sample_steps": 2, "optim.steps": 6, "optim.batch_size": 4,
    "optim.val_every": 3, "optim.ckpt_every": 3, "optim.log_every": 3, "text_encoder": "hash",
}


def tiny_config(data, out, **extra) -> PretrainConfig:
    return apply_overrides(PretrainConfig(), {**TINY, "data.path": str(data), "out": str(out), **extra})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pre")
    write_dataset(root / "data", lengths=(20, 22, 24, 26))
    drop_column(root / "data", "action")  # action-free video only
    metrics = pretrain(tiny_config(root / "data", root / "run", **{"tokenizer.foreground_weight": 2.0}), progress=False)
    return root, metrics


def test_pretrain_on_action_free_video(run):
    root, metrics = run
    assert np.isfinite(metrics["loss"]) and "val_loss" in metrics
    for name in ("config.yaml", "log.csv", "curves.png", "split.json", "tokenizer/report.json",
                 "checkpoints/last"):
        assert (root / "run" / name).exists(), name
    saved = json.loads((root / "run" / "tokenizer" / "tokenizer.json").read_text())["config"]
    assert saved["foreground_weight"] == 2.0  # the tokenizer trained with the loss weight the run asked for


def test_saved_model_reloads_to_the_same_outputs(run):
    root, _ = run
    a, _ = load_world_model(root / "run")
    b, cfg = load_world_model(root / "run")
    assert cfg.model.future == (2, 4)
    frames = torch.randint(0, 255, (1, 1, 3, 32, 32), dtype=torch.uint8)
    text = torch.randn(1, 384)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(a.imagine(frames, text, generator=g()), b.imagine(frames, text, generator=g()))


def test_action_conditioned_pretraining_needs_the_action_column(run):
    root, _ = run
    with pytest.raises(WamError, match="action"):
        pretrain(tiny_config(root / "data", root / "with_actions", **{"model.action_chunk": 2}), progress=False)


def test_split_holds_out_episodes_of_every_task(run):
    root, _ = run
    train_eps, val_eps = split_episodes(LeRobotDataset(root / "data"), 0.1)
    assert sorted(train_eps + val_eps) == [0, 1, 2, 3] and len(val_eps) == 2  # one per task


def test_imagine_writes_clips_and_refuses_bad_input(run, tmp_path, capsys):
    root, _ = run
    rundir = str(root / "run")
    assert main(["imagine", rundir, "--episode", "1", "--frame", "3", "--steps", "2",
                 "--then", "open the drawer", "--out", str(tmp_path / "c.gif")]) == 0
    assert Image.open(tmp_path / "c.gif").n_frames == 1 + 2 + 2  # start, then two chunks of 2
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "wrong.png")
    assert main(["imagine", rundir, "--image", str(tmp_path / "wrong.png"), "--instruction", "go",
                 "--out", str(tmp_path / "x.mp4")]) == 2
    assert "takes 32x32 frames" in capsys.readouterr().err
    assert main(["imagine", rundir, "--instruction", "  ", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "--instruction is empty" in capsys.readouterr().err
    assert main(["imagine", str(tmp_path), "--out", str(tmp_path / "x.mp4")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_imagine_eval_reports_baseline_and_swap_margin(run, tmp_path):
    root, _ = run
    out = tmp_path / "m.json"
    assert main(["imagine-eval", str(root / "run"), "--steps", "2", "--starts", "2", "--out", str(out)]) == 0
    import json

    m = json.loads(out.read_text())
    assert m["samples"] == 4 and m["copy_psnr"] > 0 and len(m["swap_margin_ci95"]) == 2


def test_action_conditioned_world_model_end_to_end(tmp_path):
    """Frames + actions -> future frames (a world model in the survey's sense)."""
    write_dataset(tmp_path / "data", lengths=(20, 22, 24, 26))
    cfg = tiny_config(tmp_path / "data", tmp_path / "run", **{"model.action_chunk": 3})
    assert np.isfinite(pretrain(cfg, progress=False)["loss"])
    model, _ = load_world_model(tmp_path / "run")
    assert model.action_in is not None
    assert main(["imagine-eval", str(tmp_path / "run"), "--steps", "1", "--starts", "1",
                 "--out", str(tmp_path / "m.json")]) == 0
    assert main(["imagine", str(tmp_path / "run"), "--episode", "0", "--steps", "1",
                 "--out", str(tmp_path / "c.gif")]) == 0


def test_init_adds_action_conditioning_to_an_action_free_world_model(run, tmp_path, capsys):
    """`--init`: every tensor of the action-free world model carries over (lr 0: nothing moves), the action
    parts start fresh, the tokenizer is the init's."""
    root, _ = run
    write_dataset(tmp_path / "data", lengths=(20, 22, 24, 26))  # the labelled demos
    cfg = tiny_config(tmp_path / "data", tmp_path / "act", **{"init": str(root / "run"), "model.action_chunk": 2,
                                                               "optim.lr": 0.0, "model.backbone.depth": 2})
    pretrain(cfg, progress=False)
    before, _ = load_world_model(root / "run")
    after, after_cfg = load_world_model(tmp_path / "act", use_ema=False)
    old, new = before.state_dict(), after.state_dict()
    assert after.action_in is not None and after_cfg.model.action_chunk == 2
    assert all(torch.equal(old[k], new[k]) for k in old), "a tensor of the init world model did not carry over"
    assert Path(after_cfg.tokenizer.path) == root / "run" / "tokenizer"
    assert "fresh: action_in" in capsys.readouterr().out


# -- latent actions (LAPA): `--latent_actions=true` ---------------------------------------------------
LAPA = {"latent_actions": True, "lam.steps": 4, "lam.width": 16, "lam.dim": 8, "optim.steps": 3,
        "tokenizer.steps": 2, "optim.ckpt_every": 100, "data.check": "off"}  # off: NaN actions (below) pass


def nan_action_copy(clean: Path, root: Path, lengths=(20, 22, 24, 26)) -> Path:
    """The dataset `write_dataset(clean, lengths)` wrote (same states, tasks), with every action NaN and its video
    files copied from `clean` byte for byte (the same video by construction, whatever the codec does; before
    `mbtree=0` became the default, libx264 encoded 32 px frames to different files: wam/data/video.py)."""
    from tests.conftest import FEATURES, IMAGE_KEY, episode_arrays, moving_square
    from wam.data.writer import LeRobotWriter

    writer, tasks = LeRobotWriter(root, fps=10, features=FEATURES), ("open the drawer", "push the puck")
    for e, length in enumerate(lengths):
        data = episode_arrays(length, e)
        data["action"][:] = np.nan
        writer.add_episode(tasks[e % 2], data, {IMAGE_KEY: moving_square(length, seed=e)},
                           extras={"env_task": f"task{e % 2}", "seed": e})
    videos = sorted(p.relative_to(clean) for p in clean.rglob("*.mp4"))
    assert videos and videos == sorted(p.relative_to(root) for p in root.rglob("*.mp4"))
    for rel in videos:
        shutil.copyfile(clean / rel, root / rel)
    return root


def test_latent_action_pretraining_never_reads_actions(tmp_path, monkeypatch):
    """Both stages on a dataset, then on the same video whose action column is NaN everywhere: the LAM (its own
    run and inside the world model), its codes and every world-model tensor are bit-identical (a single read of
    an action would make them NaN or different)."""
    from wam.checkpoint import load_checkpoint
    from wam.runs import train_log

    monkeypatch.setattr(train_log, "plot_log", lambda path: None)  # curves.png: not what is tested, and slow here
    write_dataset(tmp_path / "clean", lengths=(20, 22, 24, 26))
    runs = [tmp_path / "a", tmp_path / "b"]
    for data, out in zip((tmp_path / "clean", nan_action_copy(tmp_path / "clean", tmp_path / "nan")), runs):
        shared = {"tokenizer.path": str(runs[0] / "tokenizer")} if out == runs[1] else {}  # one tokenizer for both
        metrics = pretrain(tiny_config(data, out, **LAPA, **shared), progress=False)
        assert np.isfinite(metrics["code_loss"]) and np.isfinite(metrics["video_loss"])
    for stage in ("lam", ""):
        a, b = (load_checkpoint(r / stage) for r in runs)
        assert a.model.keys() == b.model.keys() and all(torch.equal(a.model[k], b.model[k]) for k in a.model), stage
        assert all(torch.equal(a.ema[k], b.ema[k]) for k in a.ema)
    wm = [load_world_model(r)[0] for r in runs]
    lam = load_checkpoint(runs[0] / "lam").model
    assert all(torch.equal(wm[0].state_dict()[k], v) for k, v in lam.items() if k.startswith("lam."))  # saved inside
    frames = torch.randn(2, 3, 4, 8, 8)  # (B, 1 + Tf, C, h, w) latents
    assert torch.equal(*(m.codes(frames[:, :1], frames[:, 1:]) for m in wm))
    assert not any(k.startswith("lam.") for k in a.ema)  # frozen in stage 2: no EMA, no optimizer state


def test_target_weight_trains_the_tokenizer_on_the_recorded_object_and_goal(tmp_path):
    """`tokenizer.target_weight` reads the Meta-World state to weight its loss (the saved tokenizer and config say
    so); data without that state is refused before any frame is decoded."""
    from wam.envs.collect import CollectConfig, collect
    from wam.errors import ConfigError

    write_dataset(tmp_path / "synthetic", lengths=(20, 22))
    with pytest.raises(ConfigError, match="environment_state"):
        pretrain(tiny_config(tmp_path / "synthetic", tmp_path / "no", **{"tokenizer.target_weight": 10.0}),
                 progress=False)
    assert not (tmp_path / "synthetic" / ".wam_cache").exists() and not (tmp_path / "no" / "tokenizer").exists()
    collect(CollectConfig(tasks="push-v3", episodes=3, out=str(tmp_path / "push"), image_size=32, workers=1),
            progress_bar=False)
    pretrain(tiny_config(tmp_path / "push", tmp_path / "run", **{"tokenizer.target_weight": 10.0,
                                                                 "optim.steps": 2}), progress=False)
    saved = json.loads((tmp_path / "run" / "tokenizer" / "tokenizer.json").read_text())["config"]
    assert saved["target_weight"] == 10.0 and saved["target_radius"] == 0.05
    assert "target_weight: 10.0" in (tmp_path / "run" / "config.yaml").read_text()
