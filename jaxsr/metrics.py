"""PSNR and SSIM with the standard super-resolution protocol; NIQE (no reference).

Both follow the MATLAB evaluation code behind published SR tables (and BasicSR's
re-implementation): images on the 0-255 scale, optional border crop of ``scale``
pixels, optional Y channel of BT.601 (``rgb2ycbcr``), everything in float64. SSIM is
Wang et al.'s index with the 11×11 Gaussian window (σ = 1.5), ``K1 = 0.01``,
``K2 = 0.03``, evaluated only where the window fits ("valid"), per channel, then
averaged.
"""

from __future__ import annotations

import functools
import os
import warnings

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


# -- NIQE -----------------------------------------------------------------------------
# Mittal, Soundararajan, Bovik, "Making a 'Completely Blind' Image Quality Analyzer",
# IEEE Signal Processing Letters 2013; the Perceptual Index of GAN-SR papers is
# ½((10 − Ma) + NIQE). MATLAB-compatible as BasicSR 1.4.2's ``calculate_niqe``: the
# pristine model (``mu_pris_param``, ``cov_pris_param`` and the 7×7 ``gaussian_window``)
# is the authors' published data, carried as BasicSR ships it
# (``basicsr/metrics/niqe_pris_params.npz``, Apache-2.0).

_NIQE_BLOCK = 96  # the authors' block size (no overlap)
_ALPHAS = np.arange(0.2, 10.001, 0.001)  # the grid MATLAB's estimate searches


@functools.cache
def _alpha_ratios() -> np.ndarray:
    """``Γ(2/α)² / (Γ(1/α) Γ(3/α))`` on the α grid: the same for every fit, so made once."""
    from scipy.special import gamma

    return gamma(2 / _ALPHAS) ** 2 / (gamma(1 / _ALPHAS) * gamma(3 / _ALPHAS))


@functools.cache
def _niqe_model() -> dict:
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "niqe_pris_params.npz")
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _aggd(x: np.ndarray) -> tuple[float, float, float]:
    """``(α, β_left, β_right)`` of an asymmetric generalised Gaussian fitted by moment
    matching on MATLAB's α grid."""
    from scipy.special import gamma

    x = x.ravel()
    sigma_l = np.sqrt(np.mean(x[x < 0] ** 2))
    sigma_r = np.sqrt(np.mean(x[x > 0] ** 2))
    g = sigma_l / sigma_r
    r = np.mean(np.abs(x)) ** 2 / np.mean(x**2)
    big_r = r * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
    alpha = _ALPHAS[np.argmin((_alpha_ratios() - big_r) ** 2)]
    scale = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, sigma_l * scale, sigma_r * scale


def _niqe_features(block: np.ndarray) -> list[float]:
    """The 18 NIQE features of one normalised block: its AGGD (α, mean β), then
    (α, mean, β_l, β_r) of the products with its 4 neighbours (circular shifts)."""
    from scipy.special import gamma

    alpha, bl, br = _aggd(block)
    feats = [alpha, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a, bl, br = _aggd(block * np.roll(block, shift, axis=(0, 1)))
        feats += [a, (br - bl) * gamma(2 / a) / gamma(1 / a), bl, br]
    return feats


# NIQE's two definitions in use, by the arithmetic they compute in: MATLAB's reference
# code (float64) and BasicSR's ``calculate_niqe`` (float32). They differ by up to 0.3 on
# photos with large flat regions (Set14's face.png), more than many gaps papers report,
# so every score is named by its definition (``niqe_matlab`` / ``niqe_basicsr``).
NIQE_DEFINITIONS = {"matlab": np.float64, "basicsr": np.float32}


def niqe_definition(name) -> str:
    """The NIQE definition a config or flag names: ``True`` is MATLAB's (the reference),
    ``False``/``""`` none; raises ``ValueError`` naming the choices otherwise."""
    if name is True:
        return "matlab"
    if not name:
        return ""
    if name not in NIQE_DEFINITIONS:
        raise ValueError(
            f"Unknown NIQE definition {name!r}; pick one of {', '.join(NIQE_DEFINITIONS)}."
        )
    return name


def niqe(image, *, crop_border: int = 0, data_range: float = 255.0, dtype=np.float64) -> float:
    """NIQE of one image (lower = more natural); no reference image needed.

    ``image``: ``(H, W)`` grey or ``(H, W, 3)`` RGB in [0, data_range]. RGB goes to
    MATLAB's Y (0-255 units), rounded as MATLAB's ``rgb2ycbcr`` of a ``uint8`` image
    is; the image is cropped to whole 96×96 blocks. Needs at least two blocks that are
    not flat (their covariance is part of the score): smaller or flat images (after
    ``crop_border``) raise ``ValueError``.

    ``dtype``: the arithmetic of the filtering, normalisation, AGGD moments and the
    half-size resize. float64 is MATLAB's (the reference); ``np.float32`` is what
    BasicSR's ``calculate_niqe`` computes in, to reproduce its numbers (within 3e-4 on
    the builtin photos; float64 differs from it by up to 2e-3 on photos with large flat
    regions).
    """
    img = np.asarray(image, np.float64) * (255.0 / data_range)
    if img.ndim == 3 and img.shape[-1] == 3:
        img = rgb_to_y(img)
    elif img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim != 2:
        raise ValueError(f"NIQE takes an (H, W) or (H, W, 3) image, not shape {img.shape}.")
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    img = np.round(img).astype(dtype)
    nh, nw = img.shape[0] // _NIQE_BLOCK, img.shape[1] // _NIQE_BLOCK
    if nh * nw < 2:  # the blocks' covariance needs two of them (one gives NaN, as in BasicSR)
        raise ValueError(
            f"NIQE needs at least two {_NIQE_BLOCK}x{_NIQE_BLOCK} blocks; the image is "
            f"{img.shape[1]}x{img.shape[0]}."
        )
    img = img[: nh * _NIQE_BLOCK, : nw * _NIQE_BLOCK]
    # A flat block has no negative (or positive) coefficients: its AGGD fit is NaN and
    # it is left out of the statistics, as in MATLAB and BasicSR. numpy's warnings
    # about those empty means say nothing to the user.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return _niqe_distance(img, nh, nw, dtype)


def _niqe_distance(img: np.ndarray, nh: int, nw: int, dtype) -> float:
    from scipy.ndimage import convolve

    from jaxsr.ops.imresize import imresize

    model = _niqe_model()
    window = model["gaussian_window"]
    per_scale = []
    for scale in (1, 2):
        mu = convolve(img, window, mode="nearest")
        sigma = np.sqrt(np.abs(convolve(img**2, window, mode="nearest") - mu**2))
        norm = (img - mu) / (sigma + 1)
        b = _NIQE_BLOCK // scale
        per_scale.append(
            [
                _niqe_features(norm[i * b : (i + 1) * b, j * b : (j + 1) * b])
                for i in range(nh)
                for j in range(nw)
            ]
        )
        if scale == 1:  # MATLAB imresize(…, 0.5), antialiased, on [0, 1]
            img = imresize(img[..., None] / 255.0, 0.5, host_dtype=dtype)[..., 0] * 255.0
    feats = np.concatenate([np.asarray(f) for f in per_scale], axis=1)
    textured = feats[~np.isnan(feats).any(axis=1)]
    if len(textured) < 2:
        raise ValueError(
            f"NIQE needs at least two {_NIQE_BLOCK}x{_NIQE_BLOCK} blocks that are not flat; "
            f"this image has {len(textured)}."
        )
    mu_d = np.nanmean(feats, axis=0)
    cov_d = np.cov(textured, rowvar=False)
    diff = model["mu_pris_param"].ravel() - mu_d
    return float(np.sqrt(diff @ np.linalg.pinv((model["cov_pris_param"] + cov_d) / 2) @ diff))
