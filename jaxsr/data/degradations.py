"""Blind-SR degradations, ``y = quantise((x ⊗ k)↓s + n)``, as pure ``jnp`` for the device.

DASR (Wang et al., CVPR 2021, Sec. 4.1; official ``utils/util.py``) synthesises its
training LR images on the GPU, batch by batch: a 21×21 Gaussian blur kernel per HR
image (isotropic σ, or anisotropic with standard deviations λ1, λ2 and angle θ),
reflection padding, bicubic ×1/s, per-image Gaussian noise with σ_n ~ U[0, noise] on
the 0–255 scale, and rounding. Here the same runs inside the jitted train step: the
host only crops HR patches, and every function is vmappable and shape-static.

Values are on the 0–255 scale throughout, as in the official code. One kernel and one
noise level are drawn per HR image and shared by all of its patches (DASR's query and
key patches must carry the same degradation).

:func:`degrade_host` is a numpy/scipy version of the same pipeline with fixed
parameters, used for the evaluation protocol (fixed kernels, seeded noise) and as
the host-side baseline in ``jaxsr.benchmark``.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.ops.imresize import imresize, resize_matrix

MODES = ("iso", "aniso")

# Paper Table 2: the isotropic kernel widths evaluated per scale (0 = no blur).
PAPER_EVAL_SIGMAS = {2: (0.0, 0.6, 1.2, 1.8), 3: (0.0, 0.8, 1.6, 2.4), 4: (0.0, 1.2, 2.4, 3.6)}

# Paper Table 3's nine anisotropic kernels (λ1, λ2, θ in degrees) as quoted by the DSAT
# authors; the DASR authors posted them only as an image (spec §2.6, unverified).
PAPER_ANISO_KERNELS = (
    (2.0, 0.2, 0.0),
    (2.0, 1.0, 10.0),
    (3.5, 1.5, 30.0),
    (3.5, 2.0, 45.0),
    (3.5, 2.0, 90.0),
    (4.0, 1.5, 120.0),
    (4.0, 2.0, 135.0),
    (4.0, 3.0, 165.0),
    (4.0, 4.0, 180.0),
)


def kernel_grid(size: int) -> tuple[jax.Array, jax.Array]:
    """Column (x) and row (y) offsets of a ``size``×``size`` kernel, centred on 0."""
    ax = jnp.arange(size, dtype=jnp.float32) - size // 2
    yy, xx = jnp.meshgrid(ax, ax, indexing="ij")
    return xx, yy


def gaussian_taps(size: int, sigma) -> jax.Array:
    """1-D Gaussian ``exp(-x² / 2σ²)``, normalised; ``sigma = 0`` gives a delta."""
    ax = jnp.arange(size, dtype=jnp.float32) - size // 2
    s = jnp.maximum(jnp.asarray(sigma, jnp.float32), 1e-6)
    g = jnp.where(sigma > 0, jnp.exp(-(ax * ax) / (2.0 * s * s)), (ax == 0).astype(jnp.float32))
    return g / jnp.sum(g)


def isotropic_gaussian_kernel(size: int, sigma) -> jax.Array:
    """``exp(-(x² + y²) / 2σ²)`` on a ``size``×``size`` grid, normalised to sum 1.

    ``sigma = 0`` gives the identity (a centred delta): "kernel width 0" in the
    paper's tables means plain bicubic degradation.
    """
    g = gaussian_taps(size, sigma)
    return g[:, None] * g[None, :]


def anisotropic_covariance(lambda1, lambda2, theta) -> jax.Array:
    """``Σ = R(θ) diag(λ1², λ2²) R(θ)ᵀ``: λ are standard deviations, θ in radians."""
    c, s = jnp.cos(theta), jnp.sin(theta)
    rot = jnp.stack([jnp.stack([c, -s]), jnp.stack([s, c])])
    return rot @ jnp.diag(jnp.stack([lambda1**2, lambda2**2])) @ rot.T


def gaussian_quadratic_form(size: int, lambda1, lambda2, theta) -> jax.Array:
    """``vᵀ Σ⁻¹ v`` over a ``size``×``size`` grid, ``v = (x, y)`` (column, row offsets),
    Σ = :func:`anisotropic_covariance`: the exponent of every Gaussian-family kernel."""
    xx, yy = kernel_grid(size)
    cov = anisotropic_covariance(
        jnp.asarray(lambda1, jnp.float32),
        jnp.asarray(lambda2, jnp.float32),
        jnp.asarray(theta, jnp.float32),
    )
    # Σ⁻¹ of the symmetric 2×2 in closed form: jnp.linalg.inv would put a LAPACK call
    # (a custom call) into the step for four numbers.
    a, b, d = cov[0, 0], cov[0, 1], cov[1, 1]
    return (d * xx * xx - 2 * b * xx * yy + a * yy * yy) / (a * d - b * b)


def anisotropic_gaussian_kernel(size: int, lambda1, lambda2, theta) -> jax.Array:
    """``exp(-½ vᵀ Σ⁻¹ v)`` (:func:`gaussian_quadratic_form`), normalised to sum 1."""
    k = jnp.exp(-0.5 * gaussian_quadratic_form(size, lambda1, lambda2, theta))
    return k / jnp.sum(k)


def blur(images: jax.Array, kernel: jax.Array) -> jax.Array:
    """Correlate every channel of ``images (..., H, W, C)`` with one 2-D ``kernel``.

    The images are reflection-padded by ``size // 2`` first (``nn.ReflectionPad2d``),
    so the output has the input's size. Gaussian kernels are point-symmetric, so
    correlation and convolution agree. (The training path, :func:`degrade`, fuses
    blur and downscaling into matrix products instead.)
    """
    size = kernel.shape[0]
    lead, (h, w, c) = images.shape[:-3], images.shape[-3:]
    x = images.reshape((-1, h, w, c))
    x = jnp.moveaxis(x, 0, -1).reshape((1, h, w, -1))  # every (image, channel) a channel
    p = size // 2
    x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
    groups = x.shape[-1]
    k = jnp.broadcast_to(kernel.astype(x.dtype)[:, :, None, None], (size, size, 1, groups))
    y = jax.lax.conv_general_dilated(
        x,
        k,
        window_strides=(1, 1),
        padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=groups,
        precision="highest",
    )
    y = jnp.moveaxis(y.reshape((h, w, c, -1)), -1, 0)
    return y.reshape(lead + (h, w, c))


def _reflect(index: np.ndarray, n: int) -> np.ndarray:
    """``ReflectionPad`` index rule: -1 -> 1, n -> n - 2 (the edge is not repeated)."""
    index = np.abs(index)
    return np.where(index > n - 1, 2 * (n - 1) - index, index)


def blur_resize_matrix(taps: jax.Array, n_in: int, n_out: int, boundary: str) -> jax.Array:
    """``(n_out, n_in)``: a reflect-padded 1-D correlation with ``taps``, then bicubic."""
    k = taps.shape[-1]
    idx = _reflect(np.arange(n_in)[:, None] + np.arange(k)[None, :] - k // 2, n_in)
    rows = np.broadcast_to(np.arange(n_in)[:, None], idx.shape)
    conv = jnp.zeros((n_in, n_in), taps.dtype).at[rows, idx].add(taps[None, :])
    resize = jnp.asarray(resize_matrix(n_in, n_out, n_out / n_in, boundary), taps.dtype)
    return jnp.dot(resize, conv, precision="highest")


def blur_downscale(
    images: jax.Array, row_taps: jax.Array, col_taps: jax.Array, *, scale: int, boundary: str
) -> jax.Array:
    """Blur with ``K = Σ_r row_taps[r] ⊗ col_taps[r]`` then bicubic ×1/scale, as matmuls.

    Blur (reflect padding) and resize are both linear and separable per term, so
    ``LR = Σ_r (R_h C(u_r)) X (R_w C(v_r))ᵀ``: small dense products that run on the
    MXU / tensor cores, instead of a 21×21 depthwise convolution at HR followed by
    the resize. An isotropic Gaussian is one term; any 21×21 kernel is exactly 21
    terms (row ``t`` of ``K`` against a delta at ``t``).
    """
    h_in, w_in = images.shape[-3], images.shape[-2]
    h, w = h_in // scale, w_in // scale  # DASR: int(h / s)
    a_h = jax.vmap(lambda t: blur_resize_matrix(t, h_in, h, boundary))(row_taps)  # (r, h, H)
    a_w = jax.vmap(lambda t: blur_resize_matrix(t, w_in, w, boundary))(col_taps)  # (r, w, W)
    return jnp.einsum("rhH,...HWc,rwW->...hwc", a_h, images, a_w, precision="highest")


@dataclasses.dataclass(frozen=True)
class DegradationConfig:
    """Parameters of the random training degradation (``config.degradation``).

    Attributes:
      scale: downscaling factor s.
      mode: ``'iso'`` (σ ~ U[sig_min, sig_max]) or ``'aniso'`` (λ1, λ2 ~
        U[lambda_min, lambda_max], θ ~ U[0, π)).
      kernel_size: side of the blur kernel (21 in DASR).
      noise: noise σ_n ~ U[0, noise] per image on the 0–255 scale; 0 = noise-free.
      boundary: bicubic border rule, ``'edge'`` as DASR's code or ``'symmetric'``.
    """

    scale: int
    mode: str = "iso"
    kernel_size: int = 21
    sig_min: float = 0.2
    sig_max: float = 4.0
    lambda_min: float = 0.2
    lambda_max: float = 4.0
    noise: float = 0.0
    boundary: str = "edge"

    @classmethod
    def from_config(cls, config) -> DegradationConfig:
        d = config.degradation
        if d.mode not in MODES:
            raise ValueError(f"Unknown degradation mode {d.mode!r}; choose one of {MODES}.")
        return cls(
            scale=int(config.scale),
            mode=d.mode,
            kernel_size=int(d.kernel_size),
            sig_min=float(d.sig_min),
            sig_max=float(d.sig_max),
            lambda_min=float(d.lambda_min),
            lambda_max=float(d.lambda_max),
            noise=float(d.noise),
            boundary=d.boundary,
        )


def sample_kernel(rng: jax.Array, cfg: DegradationConfig):
    """One random blur kernel as ``(row_taps, col_taps, params)``: ``K = Σ_r row ⊗ col``.

    Isotropic kernels are separable (one term); anisotropic ones are written exactly
    as 21 terms. ``params`` is ``[σ]`` or ``[λ1, λ2, θ]``.
    """
    if cfg.mode == "iso":
        sigma = jax.random.uniform(rng, (), minval=cfg.sig_min, maxval=cfg.sig_max)
        g = gaussian_taps(cfg.kernel_size, sigma)[None]
        return g, g, sigma[None]
    k1, k2, k3 = jax.random.split(rng, 3)
    l1 = jax.random.uniform(k1, (), minval=cfg.lambda_min, maxval=cfg.lambda_max)
    l2 = jax.random.uniform(k2, (), minval=cfg.lambda_min, maxval=cfg.lambda_max)
    theta = jax.random.uniform(k3, (), minval=0.0, maxval=math.pi)
    kernel = anisotropic_gaussian_kernel(cfg.kernel_size, l1, l2, theta)
    return jnp.eye(cfg.kernel_size), kernel, jnp.stack([l1, l2, theta])


def degrade(
    hr: jax.Array,
    kernel: jax.Array,
    noise_sigma,
    rng: jax.Array,
    *,
    scale: int,
    boundary: str = "edge",
) -> jax.Array:
    """Blur with a 2-D ``kernel``, bicubic ×1/scale, add noise, quantise (0–255 in and out).

    ``hr`` is ``(..., H, W, 3)``; all leading dimensions (e.g. the two patches of one
    image) share the kernel and the noise level; the noise is independent per pixel.
    """
    size = kernel.shape[0]
    x = blur_downscale(hr, jnp.eye(size), kernel, scale=scale, boundary=boundary)
    return add_noise_and_quantize(x, noise_sigma, rng)


def add_noise_and_quantize(x: jax.Array, noise_sigma, rng: jax.Array) -> jax.Array:
    x = x + noise_sigma * jax.random.normal(rng, x.shape, x.dtype)
    return jnp.clip(jnp.round(x), 0.0, 255.0)


def add_noise(rng, clean, sigma, poisson_peak: float = 0.0):
    """Noisy version of ``clean`` (0–255 floats): Poisson (``peak`` photons at white) then
    Gaussian ``sigma``, rounded and clipped to [0, 255]."""
    k_p, k_g = jax.random.split(rng)
    x = clean
    if poisson_peak > 0:
        x = jax.random.poisson(k_p, clean / 255.0 * poisson_peak).astype(clean.dtype)
        x = x * (255.0 / poisson_peak)
    return add_noise_and_quantize(x, sigma, k_g)


def random_degrade(
    rng: jax.Array, hr: jax.Array, cfg: DegradationConfig
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The training degradation of a batch ``hr (B, ..., H, W, 3)`` (one draw per image).

    Returns the LR batch (0–255, quantised) and the drawn parameters per image:
    ``{'kernel': (B, p), 'noise': (B,)}``.
    """
    b = hr.shape[0]
    k_kernel, k_level, k_noise = jax.random.split(rng, 3)
    rows, cols, params = jax.vmap(lambda r: sample_kernel(r, cfg))(jax.random.split(k_kernel, b))
    levels = jax.random.uniform(k_level, (b,), minval=0.0, maxval=cfg.noise)

    def one(x, row, col, level, r):
        x = blur_downscale(x, row, col, scale=cfg.scale, boundary=cfg.boundary)
        return add_noise_and_quantize(x, level, r)

    lq = jax.vmap(one)(hr.astype(jnp.float32), rows, cols, levels, jax.random.split(k_noise, b))
    return lq, {"kernel": params, "noise": levels}


# -- fixed degradations for evaluation (host, numpy) --------------------------------------


def ascii_tag(label: str) -> str:
    """ASCII form of a protocol label, for metric names (``σ=1.2`` -> ``sigma=1.2``)."""
    for a, b in (("σ", "sigma"), ("λ", "lambda"), ("θ", "theta"), ("°", ""), (" ", "_")):
        label = label.replace(a, b)
    return label


@dataclasses.dataclass(frozen=True)
class FixedDegradation:
    """One evaluation setting: an isotropic σ or an anisotropic (λ1, λ2, θ in degrees),
    and a noise level on the 0–255 scale (noise drawn from ``seed``)."""

    sigma: float | None = None
    aniso: tuple[float, float, float] | None = None
    noise: float = 0.0
    seed: int = 0
    boundary: str = "edge"

    @property
    def label(self) -> str:
        if self.aniso is not None:
            kernel = "λ={:g}/{:g} θ={:g}°".format(*self.aniso)
        else:
            kernel = f"σ={self.sigma:g}"
        return kernel + (f" noise={self.noise:g}" if self.noise else "")

    @property
    def tag(self) -> str:
        return ascii_tag(self.label)

    def kernel(self, size: int = 21) -> np.ndarray:
        if self.aniso is not None:
            l1, l2, deg = self.aniso
            k = anisotropic_gaussian_kernel(size, l1, l2, deg / 180.0 * math.pi)
        else:
            k = isotropic_gaussian_kernel(size, float(self.sigma or 0.0))
        return np.asarray(k, np.float64)

    def apply(self, hr_uint8: np.ndarray, *, scale: int, index: int = 0) -> np.ndarray:
        """The LR image of the ``index``-th evaluation image (noise seeded by both)."""
        rng = np.random.default_rng([self.seed, index])
        return degrade_host(
            hr_uint8, self.kernel(), self.noise, scale=scale, rng=rng, boundary=self.boundary
        )


def degrade_host(
    hr_uint8: np.ndarray,
    kernel: np.ndarray,
    noise: float,
    *,
    scale: int,
    rng: np.random.Generator | None = None,
    boundary: str = "edge",
) -> np.ndarray:
    """numpy twin of :func:`degrade` for one image ``(H, W, 3)`` uint8 -> LR uint8."""
    from scipy import ndimage

    x = hr_uint8.astype(np.float64)
    # scipy's 'mirror' is PyTorch's ReflectionPad2d (edge pixel not repeated).
    x = np.stack([ndimage.correlate(x[..., c], kernel, mode="mirror") for c in range(3)], -1)
    x = imresize(x, size=(x.shape[0] // scale, x.shape[1] // scale), boundary=boundary)
    if noise:
        rng = rng if rng is not None else np.random.default_rng(0)
        x = x + noise * rng.standard_normal(x.shape)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def eval_degradations(
    *,
    scale: int,
    sigmas=(),
    aniso=(),
    noises=(0.0,),
    seed: int = 0,
    boundary: str = "edge",
) -> list[FixedDegradation]:
    """The settings of a Table-2/3-style evaluation: every kernel at every noise level.

    With neither ``sigmas`` nor ``aniso`` given, the paper's Table 2 widths for the scale.
    """
    if not sigmas and not aniso:
        if scale not in PAPER_EVAL_SIGMAS:
            raise ValueError(f"No paper kernel widths for ×{scale}; pass sigmas explicitly.")
        sigmas = PAPER_EVAL_SIGMAS[scale]
    out = []
    for noise in noises or (0.0,):
        common = dict(noise=float(noise), seed=seed, boundary=boundary)
        out += [FixedDegradation(sigma=float(s), **common) for s in sigmas]
        out += [FixedDegradation(aniso=tuple(float(v) for v in a), **common) for a in aniso]
    return out
