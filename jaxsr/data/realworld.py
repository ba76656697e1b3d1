"""Real-ESRGAN's degradation pieces: blur kernels, JPEG and unsharp masking.

Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure
Synthetic Data", ICCVW 2021, Sec. 3 — a *second-order* degradation: blur, random
resize, Gaussian or Poisson noise and JPEG, applied twice, then a sinc filter and
the final resize to the LR size. The official code (``realesrgan/data/
realesrgan_dataset.py`` draws the kernels, ``RealESRGANModel.feed_data`` the rest on
the GPU) builds on BasicSR's ``degradations.py``, ``diffjpeg.py`` and
``img_process_util.py``; the functions here equal those:

* :func:`bivariate_gaussian`, :func:`bivariate_generalized_gaussian`,
  :func:`bivariate_plateau` and :func:`circular_lowpass_kernel` — NumPy, for tests,
  fixed evaluation kernels and the host;
* :func:`jpeg_compress` — BasicSR's ``DiffJPEG(differentiable=False)``: YCbCr, 4:2:0
  chroma by 2×2 means, 8×8 DCT, the standard tables scaled by the quality (IJG's
  rule), rounding; on the device, per-image quality;
* :func:`usm_sharp` — BasicSR's ``USMSharp`` (a 51-tap Gaussian, σ = 8, residual
  above ``threshold``/255 softened by the same blur);
* :func:`filter2d` — BasicSR's ``filter2D``: per-image kernels, reflection padding.

Images are ``(N, H, W, 3)`` float32 RGB in [0, 1] (BasicSR's are NCHW).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxsr.data.degradations import gaussian_quadratic_form, kernel_grid

# -- kernels (NumPy, BasicSR's formulas) --------------------------------------------------


def _mesh_grid(kernel_size: int) -> np.ndarray:
    """``(k, k, 2)`` integer offsets from the centre, x then y (BasicSR ``mesh_grid``)."""
    ax = np.arange(-(kernel_size // 2), kernel_size // 2 + 1, dtype=np.float64)
    xx, yy = np.meshgrid(ax, ax)
    return np.stack([xx, yy], -1)


def sigma_matrix(sig_x: float, sig_y: float, theta: float) -> np.ndarray:
    """``R(θ) diag(σx², σy²) R(θ)ᵀ``, the covariance of a rotated Gaussian."""
    d = np.diag([sig_x**2, sig_y**2])
    u = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return u @ d @ u.T


def _quadratic_form(kernel_size, sig_x, sig_y, theta, isotropic) -> np.ndarray:
    """``gᵀ Σ⁻¹ g`` over the kernel's grid."""
    cov = np.diag([sig_x**2, sig_x**2]) if isotropic else sigma_matrix(sig_x, sig_y, theta)
    grid = _mesh_grid(kernel_size)
    return np.sum((grid @ np.linalg.inv(cov)) * grid, -1)


def bivariate_gaussian(kernel_size, sig_x, sig_y, theta, isotropic=True) -> np.ndarray:
    """``exp(-½ gᵀΣ⁻¹g)``, normalised (BasicSR ``bivariate_Gaussian``)."""
    kernel = np.exp(-0.5 * _quadratic_form(kernel_size, sig_x, sig_y, theta, isotropic))
    return kernel / kernel.sum()


def bivariate_generalized_gaussian(
    kernel_size, sig_x, sig_y, theta, beta, isotropic=True
) -> np.ndarray:
    """``exp(-½ (gᵀΣ⁻¹g)^β)``, normalised: β < 1 heavier tails, β > 1 a flatter top
    (BasicSR ``bivariate_generalized_Gaussian``)."""
    q = _quadratic_form(kernel_size, sig_x, sig_y, theta, isotropic)
    kernel = np.exp(-0.5 * np.power(q, beta))
    return kernel / kernel.sum()


def bivariate_plateau(kernel_size, sig_x, sig_y, theta, beta, isotropic=True) -> np.ndarray:
    """``1 / ((gᵀΣ⁻¹g)^β + 1)``, normalised (BasicSR ``bivariate_plateau``)."""
    q = _quadratic_form(kernel_size, sig_x, sig_y, theta, isotropic)
    kernel = np.reciprocal(np.power(q, beta) + 1)
    return kernel / kernel.sum()


def circular_lowpass_kernel(cutoff, kernel_size, pad_to=0) -> np.ndarray:
    """The 2-D sinc (an ideal circular low-pass of angular cutoff ``cutoff``):
    ``ω J₁(ω r) / (2π r)``, ``ω²/4π`` at the centre, normalised, zero-padded to
    ``pad_to`` (BasicSR ``circular_lowpass_kernel``). It makes the ringing and
    overshoot of sharpened and resampled photos."""
    from scipy import special

    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}.")
    r = np.hypot(*np.moveaxis(_mesh_grid(kernel_size), -1, 0))
    c = (kernel_size - 1) // 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = cutoff * special.j1(cutoff * r) / (2 * np.pi * r)
    kernel[c, c] = cutoff**2 / (4 * np.pi)
    kernel = kernel / np.sum(kernel)
    if pad_to > kernel_size:
        p = (pad_to - kernel_size) // 2
        kernel = np.pad(kernel, ((p, p), (p, p)))
    return kernel


# -- filtering ---------------------------------------------------------------------------


def _correlate_conv(padded: jax.Array, kernels: jax.Array) -> jax.Array:
    """:func:`_correlate` as a grouped convolution: the batch goes into the channels, a
    kernel per image repeated over its colours; no flip, as ``F.conv2d``."""
    n, hp, wp, c = padded.shape
    k = kernels.shape[-1]
    x = padded.transpose(1, 2, 0, 3).reshape(1, hp, wp, n * c)
    rhs = jnp.repeat(kernels.astype(padded.dtype), c, axis=0).transpose(1, 2, 0)[:, :, None]
    out = jax.lax.conv_general_dilated(
        x,
        rhs,
        (1, 1),
        "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=n * c,
        precision=jax.lax.Precision.HIGHEST,
    )
    return out.reshape(hp - k + 1, wp - k + 1, n, c).transpose(2, 0, 1, 3)


def _correlate_fft(padded: jax.Array, kernels: jax.Array) -> jax.Array:
    """:func:`_correlate` by FFT: the circular convolution of the padded image with the
    flipped kernel, at the padded size, equals the correlation where no tap wraps
    around, which is the valid part."""
    _, hp, wp, _ = padded.shape
    k = kernels.shape[-1]
    image = jnp.fft.rfft2(padded, axes=(1, 2))
    kernel = jnp.fft.rfft2(kernels[:, ::-1, ::-1].astype(padded.dtype), s=(hp, wp))
    out = jnp.fft.irfft2(image * kernel[..., None], s=(hp, wp), axes=(1, 2))
    return out[:, k - 1 :, k - 1 :].astype(padded.dtype)


def _correlate(padded: jax.Array, kernels: jax.Array) -> jax.Array:
    """``(N, H+k-1, W+k-1, C)`` correlated with ``(N, k, k)`` kernels, one per image.
    XLA:CPU runs grouped convolutions as a plain loop (21×21 kernels on 48 crops of
    128²: 0.8 s), so on a CPU the same sum is taken by FFT (within 1e-6); accelerators
    take the convolution, as ``F.conv2d`` on a GPU."""
    return jax.lax.platform_dependent(padded, kernels, cpu=_correlate_fft, default=_correlate_conv)


def filter2d(images: jax.Array, kernels: jax.Array) -> jax.Array:
    """Each image correlated with its own odd ``(k, k)`` kernel, reflection-padded
    (BasicSR ``filter2D``). ``images`` ``(N, H, W, C)``; ``kernels`` ``(N, k, k)`` or
    ``(k, k)`` for all."""
    k = kernels.shape[-1]
    if k % 2 != 1:
        raise ValueError(f"kernels must be odd-sized, got {k}.")
    p = k // 2
    padded = jnp.pad(images, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
    return _correlate(padded, jnp.broadcast_to(kernels, (images.shape[0], k, k)))


def _reflect_filter_matrix(taps: np.ndarray, n: int) -> np.ndarray:
    """``(n, n)``: reflection padding by ``k // 2`` followed by correlation with
    ``taps``, along one axis of length ``n``, as one matrix (both are linear)."""
    k = len(taps)
    p = k // 2
    source = np.abs(np.arange(-p, n + p))
    source = np.where(source > n - 1, 2 * (n - 1) - source, source)
    m = np.zeros((n, n), np.float64)
    for out in range(n):
        np.add.at(m[out], source[out : out + k], taps)
    return m.astype(np.float32)


def _separable_filter(images: jax.Array, taps: np.ndarray) -> jax.Array:
    """:func:`filter2d` with the kernel ``outer(taps, taps)``, one kernel for the batch,
    as two matrix products (padding and taps folded into an ``(n, n)`` matrix per
    axis): USM's 51 taps as a depthwise convolution were most of a Real-ESRGAN step's
    degradation time on a CPU, where a matrix product runs at full speed (as on a
    TPU's matrix unit)."""
    _, h, w, _ = images.shape
    rows = jnp.asarray(_reflect_filter_matrix(taps, h), images.dtype)
    cols = jnp.asarray(_reflect_filter_matrix(taps, w), images.dtype)
    return jnp.einsum("yh,nhwc,xw->nyxc", rows, images, cols, precision=jax.lax.Precision.HIGHEST)


def usm_sharp(images: jax.Array, weight=0.5, threshold=10, radius=50) -> jax.Array:
    """Unsharp masking as BasicSR's ``USMSharp``: ``x + weight·(x - blur(x))``,
    clipped to [0, 1], blended in where the residual exceeds ``threshold`` (0–255
    scale) through a blurred mask. Real-ESRGAN sharpens its ground truth with it
    (``l1_gt_usm``, ``percep_gt_usm``): the network learns to restore a crisper image
    than the camera's."""
    size = radius + 1 if radius % 2 == 0 else radius
    # OpenCV's getGaussianKernel(size, 0), which BasicSR calls: σ = 0.3((size-1)/2 - 1) + 0.8
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    taps = np.exp(-((np.arange(size) - size // 2) ** 2) / (2 * sigma**2))
    taps = taps / taps.sum()
    blur = _separable_filter(images, taps)
    residual = images - blur
    mask = (jnp.abs(residual) * 255 > threshold).astype(images.dtype)
    soft = _separable_filter(mask, taps)
    sharp = jnp.clip(images + weight * residual, 0, 1)
    return soft * sharp + (1 - soft) * images


# -- JPEG (BasicSR's DiffJPEG, not differentiable) -----------------------------------------

# The IJG tables (ITU T.81 Annex K) in libjpeg's natural order, [vertical, horizontal]
# frequency. BasicSR's DiffJPEG (after Shin & Song's) applies their transposes to
# coefficients indexed [vertical, horizontal]: the luminance table acts transposed
# (the chroma table is symmetric). Equal to BasicSR, Real-ESRGAN's JPEG, is the point
# here, so :func:`jpeg_compress` does the same; Pillow's encoder does not (see tests).
_Y_TABLE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    np.float32,
)
_C_TABLE = np.full((8, 8), 99, np.float32)
_C_TABLE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]

_RGB_TO_YCBCR = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]],
    np.float32,
)
_YCBCR_TO_RGB = np.array(
    [[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]], np.float32
)


def _dct_matrix() -> np.ndarray:
    """``D[u, x] = α(u)/2 · cos((2x+1)uπ/16)``: ``D B Dᵀ`` is the 8×8 DCT-II of block B
    and ``Dᵀ C D`` its inverse (orthonormal)."""
    u, x = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    alpha = np.where(np.arange(8) == 0, 1 / np.sqrt(2), 1.0)[:, None]
    return (alpha / 2 * np.cos((2 * x + 1) * u * np.pi / 16)).astype(np.float32)


def quality_to_factor(quality):
    """IJG's quality scaling: ``5000/q`` below 50, else ``200 - 2q``, in hundredths."""
    return jnp.where(quality < 50, 5000.0 / quality, 200.0 - quality * 2) / 100.0


def _blocks(x: jax.Array) -> jax.Array:
    """``(N, H, W)`` → ``(N, H/8, W/8, 8, 8)``."""
    n, h, w = x.shape
    return x.reshape(n, h // 8, 8, w // 8, 8).transpose(0, 1, 3, 2, 4)


def _unblocks(b: jax.Array) -> jax.Array:
    n, bh, bw = b.shape[:3]
    return b.transpose(0, 1, 3, 2, 4).reshape(n, bh * 8, bw * 8)


def _quantise_roundtrip(plane: jax.Array, table: jax.Array, factor: jax.Array) -> jax.Array:
    """One channel (0–255, sides multiples of 8) through DCT, quantisation with
    ``table·factor``, rounding, dequantisation and inverse DCT."""
    d = jnp.asarray(_dct_matrix())
    hi = jax.lax.Precision.HIGHEST
    coef = jnp.einsum("ux,nijxy,vy->nijuv", d, _blocks(plane - 128.0), d, precision=hi)
    step = table * factor[:, None, None, None, None]
    coef = jnp.round(coef / step) * step
    return _unblocks(jnp.einsum("ux,nijuv,vy->nijxy", d, coef, d, precision=hi)) + 128.0


def jpeg_compress(images: jax.Array, quality) -> jax.Array:
    """JPEG compression and decompression as BasicSR's ``DiffJPEG(differentiable=
    False)``: ``images`` ``(N, H, W, 3)`` RGB in [0, 1], ``quality`` ``(N,)`` (or a
    scalar) in (0, 100]. Zero-padded to multiples of 16 (as BasicSR), colour-converted
    with the JFIF matrix, chroma averaged over 2×2, each 8×8 block's DCT quantised with
    the IJG tables scaled by the quality and rounded; decoded with nearest chroma
    upsampling and clipped to [0, 1] (not rounded to 8 bits: BasicSR's is not)."""
    n, h, w, _ = images.shape
    factor = quality_to_factor(jnp.broadcast_to(jnp.asarray(quality, jnp.float32), (n,)))
    ph, pw = -h % 16, -w % 16
    x = jnp.pad(images.astype(jnp.float32) * 255.0, ((0, 0), (0, ph), (0, pw), (0, 0)))
    hi = jax.lax.Precision.HIGHEST
    ycc = jnp.einsum("nhwc,dc->nhwd", x, jnp.asarray(_RGB_TO_YCBCR), precision=hi)
    ycc = ycc + jnp.asarray([0.0, 128.0, 128.0])
    H, W = h + ph, w + pw
    chroma = ycc[..., 1:].reshape(n, H // 2, 2, W // 2, 2, 2).mean((2, 4))
    y = _quantise_roundtrip(ycc[..., 0], jnp.asarray(_Y_TABLE.T), factor)
    cb, cr = (
        _quantise_roundtrip(chroma[..., i], jnp.asarray(_C_TABLE.T), factor) for i in range(2)
    )
    up = lambda c: jnp.repeat(jnp.repeat(c, 2, 1), 2, 2)  # noqa: E731
    ycc = jnp.stack([y, up(cb), up(cr)], -1) - jnp.asarray([0.0, 128.0, 128.0])
    rgb = jnp.einsum("nhwc,dc->nhwd", ycc, jnp.asarray(_YCBCR_TO_RGB), precision=hi)
    return jnp.clip(rgb, 0.0, 255.0)[:, :h, :w] / 255.0


# -- the second-order pipeline on the device ----------------------------------------------

# The order of ``kernel_prob``: even indices isotropic, odd anisotropic.
KERNEL_TYPES = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)
MODES = ("area", "bilinear", "bicubic")


def default_config() -> ml_collections.ConfigDict:
    """Real-ESRGAN's ``train_realesrgan_x4plus.yml`` degradation settings (the dataset's
    kernel options and the model's ``feed_data`` options). Noise σ is on the 0–255
    scale; ``resize_prob`` is (up, down, keep)."""
    c = ml_collections.ConfigDict()
    c.scale = 4
    c.kernel_sizes = tuple(range(7, 22, 2))
    c.max_kernel_size = 21
    for suffix, sigma in (("", (0.2, 3.0)), ("2", (0.2, 1.5))):
        c[f"kernel_prob{suffix}"] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
        c[f"sinc_prob{suffix}"] = 0.1
        c[f"blur_sigma{suffix}"] = sigma
        c[f"betag_range{suffix}"] = (0.5, 4.0)
        c[f"betap_range{suffix}"] = (1.0, 2.0)
    c.final_sinc_prob = 0.8
    c.resize_prob, c.resize_range = (0.2, 0.7, 0.1), (0.15, 1.5)
    c.gaussian_noise_prob, c.noise_range = 0.5, (1.0, 30.0)
    c.poisson_scale_range, c.gray_noise_prob = (0.05, 3.0), 0.4
    c.jpeg_range = (30.0, 95.0)
    c.second_blur_prob = 0.8
    c.resize_prob2, c.resize_range2 = (0.3, 0.4, 0.3), (0.3, 1.2)
    c.gaussian_noise_prob2, c.noise_range2 = 0.5, (1.0, 25.0)
    c.poisson_scale_range2, c.gray_noise_prob2 = (0.05, 2.5), 0.4
    c.jpeg_range2 = (30.0, 95.0)
    return c


def _j1(x: jax.Array) -> jax.Array:
    """Bessel J₁ from Bessel's integral ``(1/2π) ∮ cos(τ - x sin τ) dτ``: the trapezoid
    rule over a whole period converges geometrically, to float32 precision for
    |x| < 60 with 128 nodes (the sinc kernels need |x| ≤ π·10√2)."""
    tau = jnp.arange(128) * (2 * jnp.pi / 128)
    return jnp.mean(jnp.cos(tau - x[..., None] * jnp.sin(tau)), -1)


def _uniform(key, lo_hi) -> jax.Array:
    lo, hi = lo_hi
    return jax.random.uniform(key, (), minval=lo, maxval=hi)


def _beta(key, lo_hi) -> jax.Array:
    """BasicSR draws β below 1 or above 1 with equal odds."""
    k1, k2 = jax.random.split(key)
    return jnp.where(
        jax.random.uniform(k1) < 0.5, _uniform(k2, (lo_hi[0], 1.0)), _uniform(k2, (1.0, lo_hi[1]))
    )


def _sinc(cutoff, size: int) -> jax.Array:
    """:func:`circular_lowpass_kernel` on a ``size`` grid, unnormalised."""
    xx, yy = kernel_grid(size)
    r = jnp.hypot(xx, yy)
    safe = jnp.where(r == 0, 1.0, r)
    return jnp.where(
        r == 0, cutoff**2 / (4 * jnp.pi), cutoff * _j1(cutoff * safe) / (2 * jnp.pi * safe)
    )


def _window(kernel, k, size: int) -> jax.Array:
    """``kernel`` kept on its centred ``k × k`` window (zero elsewhere), normalised:
    BasicSR's ``k``-sized kernel zero-padded to ``size``."""
    xx, yy = kernel_grid(size)
    inside = (jnp.abs(xx) <= k // 2) & (jnp.abs(yy) <= k // 2)
    kernel = jnp.where(inside, kernel, 0.0)
    return kernel / jnp.sum(kernel)


def random_kernel(key, config, stage: str = "") -> jax.Array:
    """One blur kernel of Real-ESRGAN's first (``stage=""``) or second (``"2"``)
    degradation, ``(21, 21)``: a size from ``kernel_sizes``, then with probability
    ``sinc_prob`` a sinc (cutoff U[π/3, π] below size 13, else U[π/5, π]), otherwise
    one of the six Gaussian-family kernels with ``kernel_prob``."""
    size = config.max_kernel_size
    keys = jax.random.split(key, 8)
    sizes = jnp.asarray(config.kernel_sizes)
    k = sizes[jax.random.randint(keys[0], (), 0, len(config.kernel_sizes))]
    low = jnp.where(k < 13, jnp.pi / 3, jnp.pi / 5)
    cutoff = jax.random.uniform(keys[1], (), minval=low, maxval=jnp.pi)
    sinc = _sinc(cutoff, size)

    kind = jax.random.choice(keys[2], 6, p=jnp.asarray(config[f"kernel_prob{stage}"]))
    iso = kind % 2 == 0  # iso, generalized_iso, plateau_iso
    sx = _uniform(keys[3], config[f"blur_sigma{stage}"])
    sy = jnp.where(iso, sx, _uniform(keys[4], config[f"blur_sigma{stage}"]))
    theta = jnp.where(iso, 0.0, _uniform(keys[5], (-jnp.pi, jnp.pi)))
    q = jnp.maximum(gaussian_quadratic_form(size, sx, sy, theta), 0.0)
    beta_g = _beta(keys[6], config[f"betag_range{stage}"])
    beta_p = _beta(keys[7], config[f"betap_range{stage}"])
    family = jnp.stack(
        [
            jnp.exp(-0.5 * q),
            jnp.exp(-0.5 * q**beta_g),
            1.0 / (q**beta_p + 1.0),
        ]
    )[kind // 2]
    is_sinc = jax.random.uniform(jax.random.fold_in(key, 1)) < config[f"sinc_prob{stage}"]
    return _window(jnp.where(is_sinc, sinc, family), k, size)


def random_final_sinc(key, config) -> jax.Array:
    """The last filter: with ``final_sinc_prob`` a sinc of a random size and cutoff
    U[π/3, π], else the identity (a centred pulse)."""
    size = config.max_kernel_size
    k1, k2, k3 = jax.random.split(key, 3)
    sizes = jnp.asarray(config.kernel_sizes)
    k = sizes[jax.random.randint(k1, (), 0, len(config.kernel_sizes))]
    sinc = _window(
        _sinc(jax.random.uniform(k2, (), minval=jnp.pi / 3, maxval=jnp.pi), size), k, size
    )
    pulse = jnp.zeros((size, size)).at[size // 2, size // 2].set(1.0)
    return jnp.where(jax.random.uniform(k3) < config.final_sinc_prob, sinc, pulse)


# Resampling between sizes known only on the device: every image lives on a fixed
# canvas, its content in the top-left ``n × m`` corner and zeros elsewhere, and each
# resize is a matrix product whose weights are computed from the traced sizes, so the
# program's shapes never change (the official code changes tensor sizes per batch).


def _resize_weights(mode, n_out, n_in, ratio, out_canvas: int, in_canvas: int) -> jax.Array:
    """``(out_canvas, in_canvas)`` weights of PyTorch's ``F.interpolate`` along one axis
    (``align_corners=False``, no antialiasing) from ``n_in`` to ``n_out`` samples,
    source step ``ratio``; rows from ``n_out`` on are zero. ``mode`` indexes
    :data:`MODES`."""
    o = jnp.arange(out_canvas, dtype=jnp.float32)[:, None]
    i = jnp.arange(in_canvas, dtype=jnp.float32)[None, :]
    last = n_in - 1.0
    # area: adaptive average pooling over [floor(o·n_in/n_out), ceil((o+1)·n_in/n_out))
    # (in integers: a float quotient like 15·37/15 may land a hair above 37)
    oi, ni, no = o.astype(jnp.int32), jnp.int32(n_in), jnp.int32(n_out)
    start = (oi * ni) // no
    end = ((oi + 1) * ni + no - 1) // no
    area = ((i >= start) & (i < end)) / jnp.maximum(end - start, 1)
    # bilinear: the source position clamped at 0, two taps
    src = jnp.maximum((o + 0.5) * ratio - 0.5, 0.0)
    i0 = jnp.floor(src)
    lam = src - i0
    bilinear = (i == jnp.minimum(i0, last)) * (1 - lam) + (i == jnp.minimum(i0 + 1, last)) * lam
    # bicubic (a = -0.75): four taps, indices clamped to the edge
    src = (o + 0.5) * ratio - 0.5
    i0 = jnp.floor(src)
    t = src - i0
    A = -0.75

    def near(x):  # |x| <= 1
        return ((A + 2) * x - (A + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A

    taps = (far(t + 1), near(t), near(1 - t), far(2 - t))
    bicubic = sum((i == jnp.clip(i0 - 1 + j, 0, last)) * w for j, w in enumerate(taps))
    weights = jnp.stack([area, bilinear, bicubic])[mode]
    return jnp.where(o < n_out, weights, 0.0)


def _resize(image, mode, size_out, size_in, ratio, out_canvas: tuple[int, int]):
    """One ``(Hc, Wc, 3)`` canvas image resized from ``size_in`` to ``size_out`` (traced
    ``(h, w)`` pairs) onto a canvas of ``out_canvas``."""
    rh = _resize_weights(mode, size_out[0], size_in[0], ratio[0], out_canvas[0], image.shape[0])
    rw = _resize_weights(mode, size_out[1], size_in[1], ratio[1], out_canvas[1], image.shape[1])
    return jnp.einsum("oh,hwc,pw->opc", rh, image, rw, precision=jax.lax.Precision.HIGHEST)


def _valid(image, size) -> jax.Array:
    h = jnp.arange(image.shape[0])[:, None, None] < size[0]
    w = jnp.arange(image.shape[1])[None, :, None] < size[1]
    return h & w


def _filter_valid(images, kernels, sizes) -> jax.Array:
    """Each canvas image's ``sizes`` corner filtered with reflection at *its* edges, as
    :func:`filter2d` on the image alone; zeros outside."""
    p = kernels.shape[-1] // 2

    def pad_one(image, size):
        def reflect(n, length):
            i = jnp.abs(jnp.arange(-p, length + p))
            i = jnp.where(i > n - 1, 2 * (n - 1) - i, i).astype(jnp.int32)
            return jnp.clip(i, 0, length - 1)

        return image[reflect(size[0], image.shape[0])][:, reflect(size[1], image.shape[1])]

    out = _correlate(jax.vmap(pad_one)(images, sizes), kernels)
    return jnp.where(jax.vmap(_valid)(out, sizes), out, 0.0)


def _gaussian_noise(key, images, sigma_range, gray_prob):
    """BasicSR ``random_add_gaussian_noise_pt``: σ ~ U(range)/255 per image, grey
    (one field for the three colours) with ``gray_prob``; clipped."""
    n = images.shape[0]
    k1, k2, k3, k4 = jax.random.split(key, 4)
    sigma = jax.random.uniform(k1, (n, 1, 1, 1), minval=sigma_range[0], maxval=sigma_range[1])
    gray = (jax.random.uniform(k2, (n, 1, 1, 1)) < gray_prob).astype(images.dtype)
    colour = jax.random.normal(k3, images.shape) * sigma / 255.0
    grey = jax.random.normal(k4, images.shape[:3] + (1,)) * sigma / 255.0
    return jnp.clip(images + colour * (1 - gray) + grey * gray, 0, 1)


@functools.cache
def _poisson_cdf_table() -> np.ndarray:
    """``(9, 256, 512)`` float32: the CDF of Poisson(λ) at 0..511 for
    λ = (k / 255)·2^e, e = 0..8, k = 0..255 — every rate Real-ESRGAN's Poisson noise
    can ask for (8-bit values times a power of two up to 256), in float64, each row
    ending at exactly 1 (its tail beyond 511 is below 1e-30)."""
    lam = (np.arange(256) / 255.0)[None, :, None] * 2.0 ** np.arange(9)[:, None, None]
    j = np.arange(512)[None, None, :]
    log_pmf = j * np.log(np.maximum(lam, 1e-300)) - lam - _log_factorial(511)[j]
    pmf = np.where(lam > 0, np.exp(log_pmf), (j == 0).astype(np.float64))
    cdf = np.cumsum(pmf, axis=-1)
    return (cdf / cdf[..., -1:]).astype(np.float32)


def _log_factorial(n: int) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])


def _poisson_counts(key, values, exponent) -> jax.Array:
    """Poisson counts for rates ``(values / 255)·2^exponent`` (``values`` int 0..255,
    ``exponent`` int 0..8, broadcast), drawn by inverting the exact CDF
    (:func:`_poisson_cdf_table`) with one uniform per count: a nine-step binary search
    of 512 entries. The rates are few and known, so this is the Poisson law itself,
    without ``jax.random.poisson``'s rejection loops (1.2 s per call for 48 crops of
    128² on a CPU, most of the step)."""
    table = jnp.asarray(_poisson_cdf_table().reshape(-1))
    u = jax.random.uniform(key, values.shape)
    base = (exponent * 256 + values) * 512
    count = jnp.zeros(values.shape, jnp.int32)
    for step in (256, 128, 64, 32, 16, 8, 4, 2, 1):  # count = #{j: CDF(j) < u}
        count = jnp.where(table[base + count + step - 1] < u, count + step, count)
    return count.astype(jnp.float32)


def _poisson_noise(key, images, sizes, scale_range, gray_prob):
    """BasicSR ``random_add_poisson_noise_pt``: counts ``x·v`` drawn from a Poisson law,
    ``v`` the number of distinct 8-bit values in the image rounded up to a power of
    two, the noise scaled by U(range) per image, grey with ``gray_prob``; clipped."""
    n = images.shape[0]
    k1, k2, k3, k4 = jax.random.split(key, 4)
    scale = jax.random.uniform(k1, (n, 1, 1, 1), minval=scale_range[0], maxval=scale_range[1])
    gray = (jax.random.uniform(k2, (n, 1, 1, 1)) < gray_prob).astype(images.dtype)
    valid = jax.vmap(_valid)(images[..., :1], sizes)

    def noise(key, x):
        x = jnp.clip(jnp.round(x * 255.0), 0, 255)
        mask = jnp.broadcast_to(valid, x.shape)

        def distinct(xi, mi):
            return jnp.sum(jnp.zeros(256).at[xi.astype(jnp.int32).ravel()].add(mi.ravel()) > 0)

        exponent = jnp.ceil(jnp.log2(jax.vmap(distinct)(x, mask).astype(jnp.float32)))
        exponent = jnp.clip(exponent, 0, 8).astype(jnp.int32)[:, None, None, None]
        counts = _poisson_counts(key, x.astype(jnp.int32), exponent)
        return counts / 2.0**exponent - x / 255.0

    grey_in = jnp.sum(images * jnp.asarray([0.2989, 0.587, 0.114]), -1, keepdims=True)
    colour, grey = noise(k3, images), noise(k4, grey_in)
    return jnp.clip(images + (colour * (1 - gray) + grey * gray) * scale, 0, 1)


def _noise(key, images, sizes, config, stage):
    kg, kp, kc = jax.random.split(key, 3)
    gray_prob = config[f"gray_noise_prob{stage}"]
    gaussian = _gaussian_noise(kg, images, config[f"noise_range{stage}"], gray_prob)
    poisson = _poisson_noise(kp, images, sizes, config[f"poisson_scale_range{stage}"], gray_prob)
    pick = (
        jax.random.uniform(kc, (images.shape[0], 1, 1, 1)) < config[f"gaussian_noise_prob{stage}"]
    )
    out = jnp.where(pick, gaussian, poisson)
    return jnp.where(jax.vmap(_valid)(out, sizes), out, 0.0)


def _jpeg(key, images, jpeg_range):
    quality = jax.random.uniform(
        key, (images.shape[0],), minval=jpeg_range[0], maxval=jpeg_range[1]
    )
    return jpeg_compress(images, quality)


def _random_resize(key, images, sizes, config, stage, target, ratio_from_scale, canvas):
    """Resize each image by a random factor (up / down / keep with ``resize_prob``,
    factor range ``resize_range``) of ``target`` (the size the factor applies to),
    with a random mode; returns the new canvas and sizes."""
    n = images.shape[0]
    k1, k2, k3 = jax.random.split(key, 3)
    lo, hi = config[f"resize_range{stage}"]
    kind = jax.random.choice(k1, 3, (n,), p=jnp.asarray(config[f"resize_prob{stage}"]))
    u = jax.random.uniform(k2, (n,))
    factor = jnp.stack([1 + u * (hi - 1), lo + u * (1 - lo), jnp.ones(n)])[kind, jnp.arange(n)]
    mode = jax.random.randint(k3, (n,), 0, 3)
    new = jnp.floor(jnp.asarray(target, jnp.float32)[None] * factor[:, None])
    # F.interpolate(scale_factor=f) steps 1/f through the source; with a size, in/out.
    ratio = jnp.where(ratio_from_scale, 1.0 / factor[:, None], sizes / new)
    out = jax.vmap(lambda x, m, so, si, r: _resize(x, m, so, si, r, canvas))(
        images, mode, new, sizes, ratio
    )
    return out, new


def degrade(rng, hr: jax.Array, config) -> dict[str, jax.Array]:
    """Real-ESRGAN's second-order degradation of a batch of HR crops, on the device.

    ``hr`` ``(N, H, W, 3)`` float32 in [0, 1] with ``H`` and ``W`` multiples of the
    scale; ``config`` a recipe config (its ``degradation`` node) or such a node
    (:func:`default_config`). Returns ``{"lq": (N, H/s, W/s, 3), "gt_usm": …}``: the
    LR input (rounded to 8 bits) and the sharpened ground truth it was made from, as
    ``RealESRGANModel.feed_data``: blur₁, random resize, Gaussian or Poisson noise,
    JPEG; blur₂ (with ``second_blur_prob``), random resize relative to the LR size,
    noise; then either [resize to the LR size, sinc, JPEG] or [JPEG, resize, sinc],
    with even odds. Kernels, noise levels, qualities, resize factors and modes are
    drawn per image (BasicSR draws the resize factor, the mode and the noise family
    per batch: the same distribution for each image).
    """
    config = config.get("degradation", config)
    n, h, w, _ = hr.shape
    s = config.scale
    if h % s or w % s:
        raise ValueError(f"HR crops of {h}×{w} are not a multiple of the scale {s}.")
    keys = jax.random.split(rng, 12)
    per_image = lambda f, k: jax.vmap(f, (0, None))(jax.random.split(k, n), config)  # noqa: E731
    k1 = per_image(random_kernel, keys[0])
    k2 = per_image(lambda k, c: random_kernel(k, c, "2"), keys[1])
    sinc = per_image(random_final_sinc, keys[2])

    gt_usm = usm_sharp(hr)
    x = filter2d(gt_usm, k1)
    # first order: resize by U-factor of the HR size, onto a canvas that fits 1.5×
    hi1 = max(1.0, config.resize_range[1])
    canvas1 = (int(h * hi1) + 1, int(w * hi1) + 1)
    full = jnp.broadcast_to(jnp.asarray([h, w], jnp.float32), (n, 2))
    x, size = _random_resize(keys[3], x, full, config, "", (h, w), True, canvas1)
    x = _noise(keys[4], x, size, config, "")
    x = _jpeg(keys[5], x, config.jpeg_range)
    x = jnp.where(jax.vmap(_valid)(x, size), x, 0.0)
    # second order
    blurred = _filter_valid(x, k2, size)
    second = jax.random.uniform(keys[6], (n, 1, 1, 1)) < config.second_blur_prob
    x = jnp.where(second, blurred, x)
    lr = (h // s, w // s)
    hi2 = max(1.0, config.resize_range2[1])
    canvas2 = (int(lr[0] * hi2) + 1, int(lr[1] * hi2) + 1)
    x, size = _random_resize(keys[7], x, size, config, "2", lr, False, canvas2)
    x = _noise(keys[8], x, size, config, "2")
    # last: [resize, sinc, JPEG] or [JPEG, resize, sinc]
    mode = jax.random.randint(keys[9], (n,), 0, 3)
    target = jnp.broadcast_to(jnp.asarray(lr, jnp.float32), (n, 2))
    resize = jax.vmap(lambda im, m, si: _resize(im, m, target[0], si, si / target[0], lr))
    valid = jax.vmap(_valid)(x, size)
    a = _jpeg(keys[10], filter2d(resize(x, mode, size), sinc), config.jpeg_range2)
    b = filter2d(
        resize(jnp.where(valid, _jpeg(keys[10], x, config.jpeg_range2), 0.0), mode, size), sinc
    )
    order = jax.random.uniform(keys[11], (n, 1, 1, 1)) < 0.5
    x = jnp.where(order, a, b)
    lq = jnp.clip(jnp.round(x * 255.0), 0, 255) / 255.0
    return {"lq": lq, "gt_usm": gt_usm}
