"""AutoencoderKLWan as wam's frame tokenizer: loaded from a save_pretrained folder, its round trip is
diffusers' own encode (posterior mean) and decode, frame by frame, to 1e-5."""

from __future__ import annotations

import pytest
import torch

diffusers = pytest.importorskip("diffusers")

from wam.backbones.loading import VAES, load_vae  # noqa: E402
from wam.backbones.vae import VaeTokenizer  # noqa: E402


def test_round_trip_equals_diffusers(tmp_path):
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKLWan(**VAES["tiny"]).eval()
    vae.save_pretrained(tmp_path / "vae")
    diffusers.WanTransformer3DModel(num_layers=1, num_attention_heads=1, attention_head_dim=12, in_channels=16,
                                    out_channels=16, text_dim=4, ffn_dim=8).save_pretrained(tmp_path / "transformer")
    tok = VaeTokenizer(load_vae("wan", str(tmp_path), "tiny"), image_size=32)
    frames = torch.randint(0, 256, (2, 3, 3, 32, 32), dtype=torch.uint8)  # (B, T, 3, H, W)
    z = tok.encode(frames)
    assert z.shape == (2, 3, 16, 4, 4)
    x = frames.reshape(6, 3, 1, 32, 32).float() / 127.5 - 1  # each frame its own one-frame video
    with torch.no_grad():
        ref_z = vae.encode(x).latent_dist.mode()  # (6, 16, 1, 4, 4)
        ref_x = vae.decode(ref_z).sample
    assert (z.reshape(6, 16, 1, 4, 4) - ref_z).abs().max() < 1e-5
    back = tok.decode(tok.denormalize(tok.normalize(z)))
    assert back.shape == (2, 3, 3, 32, 32)
    assert (back.reshape(6, 3, 1, 32, 32) - ((ref_x + 1) / 2).clamp(0, 1)).abs().max() < 1e-5
    mean = torch.tensor(vae.config.latents_mean)[:, None, None]
    std = torch.tensor(vae.config.latents_std)[:, None, None]
    assert torch.allclose(tok.normalize(z), (z - mean) / std)


def test_the_wan22_vae_layout():
    """Wan 2.2's VAE (residual, patchified input, x16 spatial): a 64 px frame is a 4x4 latent, as diffusers encodes it."""
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKLWan(base_dim=8, decoder_base_dim=8, z_dim=8, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                                     temperal_downsample=[False, True, True], is_residual=True, in_channels=12,
                                     out_channels=12, patch_size=2, scale_factor_spatial=16, latents_mean=[0.0] * 8,
                                     latents_std=[1.0] * 8).eval()
    tok = VaeTokenizer(vae, image_size=64)
    frames = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    z = tok.encode(frames)
    assert z.shape == (2, 8, 4, 4) and tok.cfg.downsample == 16
    with torch.no_grad():
        ref = vae.encode(frames[:, :, None].float() / 127.5 - 1).latent_dist.mode()[:, :, 0]
    assert (z - ref).abs().max() < 1e-5
    assert tok.decode(z).shape == (2, 3, 64, 64)
