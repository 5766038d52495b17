"""Image metrics (wam.nn.image_metrics) keep their value inside the bf16 autocast regions the evaluations run in."""

from __future__ import annotations

import torch

from wam.nn.image_metrics import psnr, ssim


def test_ssim_is_the_fp32_value_inside_a_bf16_autocast_region():
    """`wam imagine-eval` measures under the run's precision; in bf16 the local variances E[x^2] - E[x]^2 cancel
    (an imagined frame's SSIM read 0.14 where fp32 gives 0.95). The metric must not depend on the region."""
    g = torch.Generator().manual_seed(0)
    real = torch.rand(4, 3, 64, 64, generator=g).cumsum(-1) / 64  # smooth-ish frames in [0, 1]
    pred = (real + 0.02 * torch.randn(real.shape, generator=g)).clamp(0, 1)
    want = ssim(pred, real)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got_ssim, got_psnr = ssim(pred, real), psnr(pred, real)
    assert got_ssim.dtype == torch.float32 and torch.allclose(got_ssim, want, atol=1e-6)
    assert torch.allclose(got_psnr, psnr(pred, real), atol=1e-5)
