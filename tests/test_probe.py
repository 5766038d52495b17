"""The probe: R² is right on known cases, and the pipeline finds a position that the frames show."""

from __future__ import annotations

import numpy as np
import pytest

from wam.nn.tokenizer import FrameAutoencoder, TokenizerConfig
from wam.probe import ProbeConfig, mlp_fit_predict, probe_task, r2, ridge_fit_predict, spatial_fit_predict

from tests.conftest import moving_square


def test_r2_known_cases():
    y = np.random.default_rng(0).normal(size=(50, 3))
    assert r2(y, y) == pytest.approx(1.0)
    assert r2(np.broadcast_to(y.mean(0), y.shape), y) == pytest.approx(0.0)
    assert r2(y, np.full((50, 3), 0.3)) is None  # a fixed target has no R²


def test_regressors_recover_a_linear_target_and_not_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 20))
    y = x[:, :3] @ rng.normal(size=(3, 3)) + 0.01 * rng.normal(size=(400, 3))
    noise = rng.normal(size=(400, 3))
    cfg = ProbeConfig(tokenizer="x", steps=300)
    for fit in (ridge_fit_predict, lambda a, b, c: mlp_fit_predict(a, b, c, cfg)):
        assert r2(fit(x[:300], y[:300], x[300:]), y[300:]) > 0.9
        assert r2(fit(x[:300], noise[:300], x[300:]), noise[300:]) < 0.2


def test_probe_finds_the_moving_square_and_not_a_random_goal():
    frames = np.concatenate([moving_square(30, seed=e) for e in range(6)])  # (180, 32, 32, 3)
    t = np.tile(np.arange(30), 6)
    state = np.zeros((len(frames), 39))
    state[:, 4] = ((3 * t) % 24) / 100  # the square's column, as an "object" x in metres
    state[:, 36:39] = np.random.default_rng(1).normal(size=(len(frames), 3)) / 10  # unrelated to the frames
    is_train = np.arange(len(frames)) < 150
    tok = FrameAutoencoder(TokenizerConfig(image_size=32, downsample=4, base_channels=8)).eval()
    m = probe_task(tok, frames, state, is_train, ProbeConfig(tokenizer="x", steps=150))
    assert m["r2_object_pixels_ridge"] > 0.6
    assert m["r2_goal_pixels_ridge"] < 0.2 and m["r2_goal_latent"] < 0.2
    assert m["r2_hand_latent"] is None  # the hand never moves here


def test_spatial_probe_reads_a_position_from_few_distinct_goals():
    """A goal is fixed within an episode: 12 training episodes give 12 distinct positions. The
    keypoint probe still finds a blob's position on held-out episodes; an unrelated target it does not."""
    rng = np.random.default_rng(0)
    pos = rng.uniform(1, 7, size=(16, 2)).repeat(10, axis=0)  # (160, 2): 16 episodes x 10 frames
    rr, cc = np.meshgrid(np.arange(8) + 0.5, np.arange(8) + 0.5, indexing="ij")
    blob = np.exp(-((cc[None] - pos[:, :1, None]) ** 2 + (rr[None] - pos[:, 1:, None]) ** 2) / 0.5)  # (160, 8, 8)
    grid = np.stack([blob, 0.1 * rng.normal(size=blob.shape), np.zeros_like(blob)], 1)  # (160, 3, 8, 8)
    y = np.concatenate([pos @ np.array([[0.3, -0.1], [0.05, 0.2]]), rng.normal(size=(160, 1))], 1)
    tr = np.arange(160) < 120
    pred = spatial_fit_predict(grid[tr], y[tr], grid[~tr], ProbeConfig(tokenizer="x", steps=300))
    assert r2(pred[:, :2], y[~tr, :2]) > 0.9
    assert r2(pred[:, 2:], y[~tr, 2:]) < 0.2


@pytest.fixture(scope="module")
def reach_data(tmp_path_factory):
    """Three probed reach episodes (scenes 0-2), two more of other scenes, and two that share scene 2."""
    from wam.envs.collect import CollectConfig, collect
    from wam.nn.tokenizer import save_tokenizer

    root = tmp_path_factory.mktemp("probe")
    for name, seed, n in (("probed", 0, 3), ("more", 100, 2), ("overlap", 1, 2)):
        collect(CollectConfig(tasks="reach-v3", episodes=n, seed=seed, out=str(root / name), image_size=32,
                              workers=1), progress_bar=False)
    tok = FrameAutoencoder(TokenizerConfig(image_size=32, downsample=4, base_channels=8)).eval()
    save_tokenizer(tok, root / "tok")
    return root


def test_train_data_adds_training_episodes_and_never_held_out_scenes(reach_data):
    from wam.errors import WamError
    from wam.probe import run_probe

    def probe(**kw):
        cfg = ProbeConfig(tokenizer=str(reach_data / "tok"), data=str(reach_data / "probed"), steps=5,
                          out=str(reach_data / "probe.json"), **kw)
        return run_probe(cfg)["tasks"]["reach-v3"]

    alone = probe()
    more = probe(train_data=str(reach_data / "more"))
    assert (alone["episodes_train"], more["episodes_train"]) == (2, 4)  # 3 probed: the last held out
    assert more["frames_held_out"] == alone["frames_held_out"]  # the held-out side is the probed data's alone
    assert more["frames_train"] > alone["frames_train"]
    assert probe(train_data=str(reach_data / "more"), train_episodes=3)["episodes_train"] == 3
    with pytest.raises(WamError, match="holds out"):  # scene 2 is the probed data's held-out episode
        probe(train_data=str(reach_data / "overlap"))


def test_only_the_asked_targets_and_features_are_probed(reach_data):
    from wam.probe import probe_table, run_probe

    info = run_probe(ProbeConfig(tokenizer=str(reach_data / "tok"), data=str(reach_data / "probed"), steps=5,
                                 targets="goal", pixels=False, out=str(reach_data / "goal.json")))
    m = info["tasks"]["reach-v3"]
    assert {k for k in m if k.startswith("r2_")} == {f"r2_{t}_latent{k}" for t in ("goal", "goal_px")
                                                       for k in ("", "_ridge", "_spatial")}
    assert "psnr_object_tokenizer" in m  # the discs' PSNR is cheap: always there
    assert "R² goal |" in probe_table(info) and "R² object" not in probe_table(info)
