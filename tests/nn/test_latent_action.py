"""The latent-action model's reconstruction loss is relative to copying the frame: a LAM whose decoder adds
nothing scores exactly 1 however small the change between the frames is (a plain MSE would be near 0 there,
and the codebook collapsed onto one entry in a 2-task run: scripts/lapa_offline_small.sh)."""

from __future__ import annotations

import torch

from wam.nn.latent_action import LatentActionModel


def test_reconstruction_is_relative_to_copying_the_frame():
    torch.manual_seed(0)
    lam = LatentActionModel(channels=4, codes=8, dim=6, width=16)
    torch.nn.init.zeros_(lam.decoder[-1].weight)
    torch.nn.init.zeros_(lam.decoder[-1].bias)  # decode(prev, code) == prev: copying
    frames = torch.randn(2, 1, 4, 4, 4).expand(2, 3, 4, 4, 4).clone()
    for scale in (1e-3, 1.0):
        moved = frames + scale * torch.randn(frames.shape)
        out = lam.eval()(moved, torch.ones(2, 2, dtype=torch.bool))
        assert torch.allclose(out.recon, torch.tensor(1.0), atol=1e-5), (scale, out.recon)
