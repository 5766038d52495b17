"""Image quality metrics on float images in [0, 1]: PSNR (optionally over a mask) and SSIM.

Both take (B, 3, H, W) (any channel count works) and return one value per sample, shape (B,), so a
caller can average, take the median, or report per frame. Used by the tokenizer's reconstruction
report and by the imagination metrics (predicted vs real future frames).

    psnr(a, b)              # 10 * log10(1 / MSE), inf where a == b
    psnr(a, b, mask=m)      # MSE over the pixels where m (B, 1, H, W) > 0 only
    ssim(a, b)              # mean SSIM, Gaussian 11x11 window (sigma 1.5), K1=0.01, K2=0.03
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_pair(a: Tensor, b: Tensor) -> None:
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"expected two (B, C, H, W) images of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def psnr(a: Tensor, b: Tensor, mask: Tensor | None = None) -> Tensor:
    """Peak signal-to-noise ratio in dB per sample, data range 1. Returns (B,) float32.

    With `mask` (B, 1, H, W) (bool or weights in [0, 1]) the mean squared error is taken over the
    masked pixels only (all channels); a sample with an empty mask gives nan.
    """
    _check_pair(a, b)
    err = (a.float() - b.float()) ** 2  # (B, C, H, W)
    if mask is None:
        mse = err.flatten(1).mean(1)  # (B,)
    else:
        if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != a.shape[0] or mask.shape[2:] != a.shape[2:]:
            raise ValueError(f"mask must be (B, 1, H, W) = ({a.shape[0]}, 1, {a.shape[2]}, {a.shape[3]}), got {tuple(mask.shape)}")
        m = mask.float()  # (B, 1, H, W)
        count = m.flatten(1).sum(1) * a.shape[1]  # (B,)
        mse = (err * m).flatten(1).sum(1) / count  # nan where count == 0
    return 10.0 * torch.log10(1.0 / mse)  # inf where mse == 0


def _gaussian_window(size: int, sigma: float, channels: int, device, dtype) -> Tensor:
    x = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()  # (C, 1, k, k)


def ssim(a: Tensor, b: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean structural similarity per sample (Wang et al. 2004), data range 1. Returns (B,).

    Local statistics use a Gaussian window computed per channel over valid positions (no padding).
    Images smaller than the window use the largest odd window that fits. ssim(x, x) == 1. Always in fp32, also
    inside a bf16 autocast region (the variances E[x^2] - E[x]^2 cancel catastrophically in bf16).
    """
    _check_pair(a, b)
    with torch.autocast(a.device.type, enabled=False):
        return _ssim(a, b, window, sigma)


def _ssim(a: Tensor, b: Tensor, window: int, sigma: float) -> Tensor:
    c = a.shape[1]
    k = min(window, a.shape[2], a.shape[3])
    k -= 1 - k % 2  # odd
    w = _gaussian_window(k, sigma, c, a.device, torch.float32)
    a, b = a.float(), b.float()
    blur = lambda x: F.conv2d(x, w, groups=c)  # noqa: E731  (B, C, H-k+1, W-k+1)
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)


def discs(centres: Tensor, size: int, radius: float) -> Tensor:
    """(N, K, 2) pixel centres (column, row; NaN = absent) -> (N, 1, size, size) bool: pixel centres within
    radius * size pixels of any of a frame's K centres (the masks `psnr` takes)."""
    grid = torch.arange(size, device=centres.device, dtype=torch.float32) + 0.5
    c = centres.float()
    d2 = (grid[None, None, None, :] - c[..., 0, None, None]) ** 2 + (grid[None, None, :, None] - c[..., 1, None, None]) ** 2
    return (d2 <= (radius * size) ** 2).any(1, keepdim=True)  # (N, 1, H, W); NaN compares False
