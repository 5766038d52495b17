"""Tests for the frame tokenizer (tiny configs, CPU, seconds) and the image metrics it reports."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from wam.errors import ConfigError, WamError
from wam.nn.image_metrics import psnr, ssim
from wam.nn.tokenizer import (FrameAutoencoder, TokenizerConfig, load_tokenizer, reconstruction_report,
                              save_tokenizer, train_autoencoder)

TINY = dict(image_size=16, base_channels=8, latent_channels=4, downsample=4)


def tiny_model(**kw) -> FrameAutoencoder:
    torch.manual_seed(0)
    return FrameAutoencoder(TokenizerConfig(**(TINY | kw))).eval()


def synthetic_frames(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    """(n, size, size, 3) uint8: a smooth gradient background with a small bright square."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    frames = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        frames[i] = np.stack([xx * 255 // size, yy * 255 // size, np.full_like(xx, 90)], -1)
        x, y = rng.integers(0, size - 4, 2)
        frames[i, y:y + 4, x:x + 4] = rng.integers(150, 256, 3)
    return frames


def test_config_check():
    for bad in (dict(downsample=6), dict(downsample=1), dict(image_size=20, downsample=8), dict(latent_channels=0)):
        with pytest.raises(ConfigError):
            TokenizerConfig(**bad).check()
    assert TokenizerConfig().check().latent_size == 8


@pytest.mark.parametrize("downsample", [2, 4, 8])
def test_shapes_with_leading_dims(downsample):
    m = tiny_model(downsample=downsample)
    x = torch.rand(2, 3, 3, 16, 16)  # (B, T, 3, H, W)
    with torch.no_grad():
        z = m.encode(x)
        h = 16 // downsample
        assert z.shape == (2, 3, 4, h, h)
        y = m.decode(z)
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
        assert m.encode(x[0, 0]).shape == (4, h, h)  # no leading dims
        recon, loss = m(x)
        assert recon.shape == x.shape and loss.ndim == 0


def test_uint8_and_float_give_same_latents():
    m = tiny_model()
    x8 = torch.from_numpy(synthetic_frames(3)).permute(0, 3, 1, 2)
    with torch.no_grad():
        assert torch.equal(m.encode(x8), m.encode(x8.float() / 255.0))


def test_wrong_image_size_raises():
    m = tiny_model()
    with pytest.raises(ValueError, match="16"):
        m.encode(torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError):
        m.encode(torch.rand(2, 16, 16, 3))  # channels last
    with pytest.raises(ValueError):
        train_autoencoder(m, synthetic_frames(4, size=32), steps=1, progress=False)


def test_training_reduces_loss_and_fits_stats():
    m = tiny_model()
    frames = synthetic_frames(32)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
    with torch.no_grad():
        before = float(m(x)[1])
    logged = []
    res = train_autoencoder(m, frames, steps=40, batch_size=16, lr=3e-3, progress=False,
                            log=lambda s, mm: logged.append(s), log_every=20)
    with torch.no_grad():
        after = float(m(x)[1])
        z = m.normalize(m.encode(x))  # (N, C, h, w)
    assert after < 0.7 * before, (before, after)
    assert logged == [20, 40] and res["steps"] == 40 and res["frames_per_s"] > 0
    assert torch.allclose(z.mean((0, 2, 3)), torch.zeros(4), atol=1e-4)
    assert torch.allclose(z.std((0, 2, 3), unbiased=False), torch.ones(4), atol=1e-3)


def test_foreground_weight_upweights_pixels_that_differ_from_the_mean_frame():
    x = torch.from_numpy(synthetic_frames(4)).permute(0, 3, 1, 2)
    mean_frame = x.float().mean(0) / 255  # (3, H, W)
    with torch.no_grad():
        plain, weighted = tiny_model(), tiny_model(foreground_weight=4.0)
        assert torch.equal(plain.losses(x, mean_frame)["loss"], plain.losses(x)["loss"])
        assert not torch.allclose(weighted.losses(x, mean_frame)["l1"], weighted.losses(x)["l1"])


def test_reconstruction_report_keys():
    rep = reconstruction_report(tiny_model(), synthetic_frames(5))
    assert set(rep) >= {"psnr", "ssim", "baseline_psnr", "baseline_ssim"} and rep["frames"] == 5
    assert all(math.isfinite(rep[k]) for k in ("psnr", "ssim", "baseline_psnr", "baseline_ssim"))


def test_normalize_denormalize_invert():
    m = tiny_model()
    m.latent_mean.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
    m.latent_std.copy_(torch.tensor([0.1, 2.0, 3.0, 1.0]))
    z = torch.randn(2, 3, 4, 4, 4)  # (B, T, C, h, w)
    assert torch.allclose(m.denormalize(m.normalize(z)), z, atol=1e-5)
    assert torch.allclose(m.normalize(m.denormalize(z)), z, atol=1e-5)


def test_save_load_round_trip(tmp_path):
    m = tiny_model()
    m.fit_latent_stats(synthetic_frames(8))
    save_tokenizer(m, tmp_path / "tok")
    meta = json.loads((tmp_path / "tok" / "tokenizer.json").read_text())
    assert meta["kind"] == "wam-tokenizer" and meta["config"]["image_size"] == 16
    loaded = load_tokenizer(tmp_path / "tok")
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(m.encode(x), loaded.encode(x))
        assert torch.equal(m.decode(m.encode(x)), loaded.decode(loaded.encode(x)))
    assert torch.equal(m.latent_std, loaded.latent_std)


def test_load_wrong_directory_raises(tmp_path):
    with pytest.raises(WamError, match="empty"):
        load_tokenizer(tmp_path / "empty")
    save_tokenizer(tiny_model(), tmp_path / "other")
    (tmp_path / "other" / "tokenizer.json").write_text(json.dumps({"kind": "wam-policy", "config": {}}))
    with pytest.raises(WamError, match="other"):
        load_tokenizer(tmp_path / "other")


def test_psnr_identical_and_noise():
    x = torch.rand(2, 3, 16, 16)
    assert torch.isinf(psnr(x, x)).all()
    g = torch.Generator().manual_seed(0)
    small = (x + 0.01 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    large = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    p_small, p_large = psnr(small, x), psnr(large, x)
    assert p_small.shape == (2,) and (p_small > p_large).all() and (p_small > 35).all()
    # a uniform error of 0.1 is exactly 20 dB
    assert torch.allclose(psnr(torch.full_like(x, 0.5), torch.full_like(x, 0.6)), torch.tensor(20.0), atol=1e-3)


def test_ssim_identical_and_noise():
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    noisy = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    s = ssim(noisy, x)
    assert s.shape == (2,) and (s < 0.9).all()
    assert torch.allclose(ssim(x[..., :8, :8], x[..., :8, :8]), torch.ones(2), atol=1e-5)  # smaller than the window


def test_masked_psnr_looks_only_at_masked_pixels():
    a = torch.zeros(2, 3, 8, 8)
    b = a.clone()
    b[:, :, :4] = 0.1  # top half wrong by 0.1, bottom half exact
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 4:] = 1
    assert torch.isinf(psnr(a, b, mask=mask)).all()
    assert torch.allclose(psnr(a, b, mask=1 - mask), torch.tensor(20.0), atol=1e-3)
    assert (psnr(a, b) < 30).all()
    with pytest.raises(ValueError):
        psnr(a, b, mask=mask[:, :, :4])


def dotted_frames(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 16, 16, 3) uint8 gradient frames, each with one bright 1-pixel dot, and its centre (n, 1, 2)."""
    frames = synthetic_frames(n, seed=seed)
    frames[:] = synthetic_frames(1)[0]  # one background, the square included
    rng = np.random.default_rng(seed + 100)
    pos = rng.integers(0, 16, size=(n, 2))  # column, row
    frames[np.arange(n), pos[:, 1], pos[:, 0]] = rng.integers(0, 2, size=(n, 3)) * 255
    return frames, (pos + 0.5)[:, None].astype(np.float32)


def test_target_weight_needs_centres_and_valid_settings():
    for bad in (dict(target_weight=-1.0), dict(target_radius=0.0), dict(target_radius=0.6)):
        with pytest.raises(ConfigError):
            TokenizerConfig(**(TINY | bad)).check()
    frames, centres = dotted_frames(8, seed=0)
    with pytest.raises(ValueError, match="centres"):
        train_autoencoder(tiny_model(target_weight=10.0), frames, steps=1, progress=False)
    with pytest.raises(ValueError, match="centres"):
        train_autoencoder(tiny_model(target_weight=10.0), frames, steps=1, progress=False, centres=centres[:4])


def test_discs_of_several_centres_are_the_union_of_the_probe_discs():
    from wam.envs.target_masks import disc_mask
    from wam.nn.image_metrics import discs

    c = np.array([[[4.0, 10.0], [np.nan, np.nan]], [[12.5, 3.0], [2.0, 2.0]]], np.float32)  # (2, K=2, 2)
    got = discs(torch.from_numpy(c), 16, 0.125)  # (2, 1, 16, 16)
    assert got[0].equal(disc_mask(c[0, :1], 16, 0.125)[0])  # a NaN centre adds nothing
    assert got[1].equal(disc_mask(c[1, :1], 16, 0.125)[0] | disc_mask(c[1, 1:], 16, 0.125)[0])


def test_target_weight_weighs_the_pixels_around_the_centres():
    """The same frames and model: the loss is larger with the disc on the worst-reconstructed pixel than on the
    best one, and without the weight the centres change nothing."""
    frames, _ = dotted_frames(1, seed=0)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)  # (1, 3, 16, 16)
    weighted, plain = tiny_model(target_weight=255.0), tiny_model()  # the one disc pixel: half the loss
    with torch.no_grad():
        err = (weighted.decode(weighted.encode(x)) - x.float() / 255).abs().sum(1)[0]  # (16, 16)
        at = lambda i: torch.tensor([[[i % 16 + 0.5, i // 16 + 0.5]]])  # noqa: E731  (1, 1, 2) column, row
        worst, best = (weighted.losses(x, centres=at(int(f(err.flatten())))) for f in (torch.argmax, torch.argmin))
        assert worst["l1"] > 1.5 * best["l1"] and worst["mse"] > best["mse"]
        assert torch.equal(plain.losses(x, centres=at(0))["loss"], plain.losses(x)["loss"])
