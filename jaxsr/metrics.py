"""PSNR and SSIM with the standard super-resolution protocol.

Both follow the MATLAB evaluation code behind published SR tables (and BasicSR's
re-implementation): images on the 0-255 scale, optional border crop of ``scale``
pixels, optional Y channel of BT.601 (``rgb2ycbcr``), everything in float64. SSIM is
Wang et al.'s index with the 11×11 Gaussian window (σ = 1.5), ``K1 = 0.01``,
``K2 = 0.03``, evaluated only where the window fits ("valid"), per channel, then
averaged.
"""

from __future__ import annotations

import numpy as np

from jaxsr.ops.color import rgb_to_y


def _prepare(img, ref, crop_border: int, y_channel: bool, data_range: float):
    img = np.asarray(img, np.float64) * (255.0 / data_range)
    ref = np.asarray(ref, np.float64) * (255.0 / data_range)
    if img.shape != ref.shape:
        raise ValueError(f"Image shapes differ: {img.shape} vs {ref.shape}.")
    if img.ndim == 2:
        img, ref = img[..., None], ref[..., None]
    if y_channel and img.shape[-1] == 3:
        img, ref = rgb_to_y(img)[..., None], rgb_to_y(ref)[..., None]
    if crop_border:
        c = crop_border
        img, ref = img[c:-c, c:-c], ref[c:-c, c:-c]
    return img, ref


def psnr(img, ref, *, crop_border: int = 0, y_channel: bool = False, data_range: float = 255.0):
    """Peak signal-to-noise ratio in dB of ``img`` against ``ref`` (HWC or HW arrays).

    Args:
      img, ref: arrays on the scale ``[0, data_range]`` (uint8 images: the default 255).
      crop_border: pixels removed from each side before comparing (SR: the scale).
      y_channel: compare BT.601 luma instead of RGB.
    Returns ``inf`` for identical images.
    """
    img, ref = _prepare(img, ref, crop_border, y_channel, data_range)
    mse = np.mean((img - ref) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    g = np.exp(-((np.arange(size) - size // 2) ** 2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 2-D correlation of an HW array with ``g ⊗ g``, valid region only."""
    k = g.size
    rows = np.lib.stride_tricks.sliding_window_view(x, k, axis=0) @ g
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=1) @ g


def _ssim_single(x: np.ndarray, y: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = _gaussian_window()
    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)
    sxx = _filter_valid(x * x, g) - mu_x**2
    syy = _filter_valid(y * y, g) - mu_y**2
    sxy = _filter_valid(x * y, g) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


def ssim(img, ref, *, crop_border: int = 0, y_channel: bool = False, data_range: float = 255.0):
    """Structural similarity (MATLAB-style Gaussian SSIM), averaged over channels."""
    img, ref = _prepare(img, ref, crop_border, y_channel, data_range)
    if min(img.shape[:2]) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after cropping, got {img.shape[:2]}.")
    return float(np.mean([_ssim_single(img[..., c], ref[..., c]) for c in range(img.shape[-1])]))
