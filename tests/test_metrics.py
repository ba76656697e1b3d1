"""PSNR / SSIM against hand-computed values and scikit-image."""

import math

import numpy as np
import pytest

from jaxsr.metrics import psnr, ssim


def test_psnr_by_hand():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 10, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-12)
    assert psnr(a, a) == float("inf")
    # Y channel: a grey step of 10 changes Y by 10 * (65.481 + 128.553 + 24.966) / 255.
    dy = 10 * 219.0 / 255
    assert psnr(a, b, y_channel=True) == pytest.approx(10 * math.log10(255**2 / dy**2), abs=1e-9)


def test_psnr_crop_border_ignores_the_frame():
    a = np.zeros((12, 12), np.uint8)
    b = a.copy()
    b[:2] = 200
    assert psnr(a, b, crop_border=2) == float("inf")
    assert psnr(a, b, crop_border=1) < 20


def test_ssim_constant_images_closed_form():
    # Constant images: variances vanish, SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    a, b = 100.0, 120.0
    c1 = (0.01 * 255) ** 2
    x = np.full((16, 16), a)
    y = np.full((16, 16), b)
    assert ssim(x, y) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-12)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_scikit_image_gaussian_variant():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 50, 3)).astype(np.float64)
    y = np.clip(x + rng.normal(0, 20, x.shape), 0, 255)
    ref = structural_similarity(
        x,
        y,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1,
    )
    assert ssim(x, y) == pytest.approx(ref, abs=1e-10)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
