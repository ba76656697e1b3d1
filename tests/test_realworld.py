"""Real-ESRGAN's degradation pieces against references written here from the formulas
(BasicSR's ``degradations.py``, ``diffjpeg.py``, ``img_process_util.py``), the
PyTorch ones in BasicSR's own layout (NCHW, ``tensordot`` over the 4-D DCT basis)."""

import io
import math

import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxsr.data import realworld as rw

# -- kernels, one pixel at a time ---------------------------------------------------------


def _q(x, y, sx, sy, theta, iso):
    """gᵀ Σ⁻¹ g at offset (x, y), Σ = R diag(sx², sy²) Rᵀ written out by hand."""
    if iso:
        sy, theta = sx, 0.0
    c, s = math.cos(theta), math.sin(theta)
    a = c * c * sx * sx + s * s * sy * sy
    b = c * s * (sx * sx - sy * sy)
    d = s * s * sx * sx + c * c * sy * sy
    det = a * d - b * b
    return (d * x * x - 2 * b * x * y + a * y * y) / det


def _reference(k, f):
    r = k // 2
    out = np.array([[f(x, y) for x in range(-r, r + 1)] for y in range(-r, r + 1)])
    return out / out.sum()


@pytest.mark.parametrize("iso", [True, False])
def test_kernels_equal_the_formulas(iso):
    k, sx, sy, th, beta = 21, 2.3, 0.9, 0.7, 1.7
    q = lambda x, y: _q(x, y, sx, sy, th, iso)  # noqa: E731
    np.testing.assert_allclose(
        rw.bivariate_gaussian(k, sx, sy, th, iso),
        _reference(k, lambda x, y: math.exp(-0.5 * q(x, y))),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        rw.bivariate_generalized_gaussian(k, sx, sy, th, beta, iso),
        _reference(k, lambda x, y: math.exp(-0.5 * q(x, y) ** beta)),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        rw.bivariate_plateau(k, sx, sy, th, beta, iso),
        _reference(k, lambda x, y: 1 / (q(x, y) ** beta + 1)),
        rtol=1e-10,
    )
    g = rw.bivariate_gaussian(k, sx, sy, th, iso)
    assert g.shape == (k, k) and abs(g.sum() - 1) < 1e-12
    if not iso:  # rotated, so not symmetric about the axes
        assert not np.allclose(g, g[::-1])


def test_circular_lowpass_is_the_2d_sinc_and_pads():
    from scipy import special

    cutoff, k = 1.3, 13

    def f(x, y):
        r = math.hypot(x, y)
        return (
            cutoff**2 / (4 * math.pi)
            if r == 0
            else cutoff * special.j1(cutoff * r) / (2 * math.pi * r)
        )

    kernel = rw.circular_lowpass_kernel(cutoff, k)
    np.testing.assert_allclose(kernel, _reference(k, f), rtol=1e-10)
    padded = rw.circular_lowpass_kernel(cutoff, k, pad_to=21)
    assert padded.shape == (21, 21)
    np.testing.assert_array_equal(padded[4:17, 4:17], kernel)
    assert padded[:4].sum() == 0 and padded[:, 17:].sum() == 0
    with pytest.raises(ValueError, match="odd"):
        rw.circular_lowpass_kernel(cutoff, 12)


# -- filtering, USM -----------------------------------------------------------------------


def _ref():
    """The PyTorch references (``tests/realesrgan_torch.py``); skips without torch."""
    pytest.importorskip("torch")
    import realesrgan_torch

    return realesrgan_torch


def _nchw(x):
    import torch

    return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def test_filter2d_and_usm_equal_basicsr():
    ref = _ref()
    import torch

    rng = np.random.default_rng(0)
    images = rng.random((3, 40, 36, 3), dtype=np.float32)
    kernels = rng.random((3, 7, 7)).astype(np.float32)
    want = ref.filter2d(_nchw(images), torch.from_numpy(kernels)).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(
        rw.filter2d(jnp.asarray(images), jnp.asarray(kernels)), want, rtol=1e-6
    )
    # The CPU takes the FFT (above); accelerators the grouped convolution: the same sums.
    padded = jnp.asarray(rng.random((3, 50, 47, 3), dtype=np.float32))
    big = jnp.asarray(rng.random((3, 21, 21)).astype(np.float32))
    np.testing.assert_allclose(
        rw._correlate_conv(padded, big), rw._correlate_fft(padded, big), rtol=2e-6
    )

    # USMSharp(radius=50): OpenCV's getGaussianKernel(51, 0) has σ = 0.3·(25 - 1) + 0.8 = 8.
    want = ref.usm_sharp(_nchw(images)).numpy().transpose(0, 2, 3, 1)
    got = np.asarray(rw.usm_sharp(jnp.asarray(images)))
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert np.abs(got - images).max() > 0.05  # it did sharpen


# -- JPEG ---------------------------------------------------------------------------------


def test_jpeg_equals_basicsr_diffjpeg_per_image_quality():
    ref = _ref()
    from jaxsr.data import builtin_photo

    photo = builtin_photo("astronaut")[100:172, 150:238].astype(np.float32) / 255  # 72×88
    rng = np.random.default_rng(0)
    images = np.stack([photo, rng.random(photo.shape, dtype=np.float32), photo[::-1]])
    quality = np.array([30.0, 57.5, 95.0], np.float32)
    want = ref.diffjpeg(_nchw(images), quality).numpy().transpose(0, 2, 3, 1)
    got = np.asarray(rw.jpeg_compress(jnp.asarray(images), jnp.asarray(quality)))
    assert got.shape == images.shape
    # Measured: max 6e-5 on the 0-255 scale (float32 sums in another order); a
    # coefficient rounded the other way would move a block by whole levels.
    np.testing.assert_allclose(got, want, atol=1e-5)
    # Quality matters, and compression damages.
    err = [np.abs(got[0] - images[0]).mean(), np.abs(got[2][::-1] - images[0]).mean()]
    assert err[0] > err[1] > 0


def test_jpeg_is_close_to_pillows_encoder_not_equal():
    """Pillow (libjpeg) at the same quality: integer tables, the luminance table the
    right way round, rounding to 8 bits. Measured on this crop: a mean difference of
    2.9 / 2.3 / 1.6 levels at quality 30 / 60 / 90, against 4.7 / 3.6 / 2.3 for
    Pillow's own error (the docs state it)."""
    from jaxsr.data import builtin_photo

    photo = builtin_photo("astronaut")[:256, :256]
    for q in (30, 60, 90):
        buf = io.BytesIO()
        Image.fromarray(photo).save(buf, "JPEG", quality=q, subsampling="4:2:0")
        pil = np.asarray(Image.open(buf).convert("RGB")).astype(np.float32)
        ours = np.asarray(rw.jpeg_compress(jnp.asarray(photo[None] / 255.0), q))[0] * 255
        gap = np.abs(ours - pil).mean()
        own_error = np.abs(pil - photo).mean()
        assert gap < own_error, (q, gap, own_error)


# -- resizing on a canvas, the whole pipeline ------------------------------------------------


@pytest.mark.parametrize("mode", ["area", "bilinear", "bicubic"])
@pytest.mark.parametrize(
    "n_in,factor,by_scale", [(37, 1.37, True), (37, 0.41, True), (23, 0.7, False)]
)
def test_canvas_resize_equals_torch_interpolate(mode, n_in, factor, by_scale):
    """One image on a larger canvas, resized by traced sizes, equals ``F.interpolate``
    of the image alone (by ``scale_factor`` for the first resize, by ``size`` after)."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    image = rng.random((n_in, n_in - 5, 3), dtype=np.float32)
    out_h, out_w = int(n_in * factor), int((n_in - 5) * factor)
    x = torch.from_numpy(image.transpose(2, 0, 1)[None].copy())
    kw = {} if mode == "area" else {"align_corners": False}
    if by_scale:
        want = F.interpolate(x, scale_factor=factor, mode=mode, **kw)
        ratio = jnp.asarray([1 / factor, 1 / factor])
    else:
        want = F.interpolate(x, size=(out_h, out_w), mode=mode, **kw)
        ratio = jnp.asarray([n_in / out_h, (n_in - 5) / out_w])
    want = want[0].numpy().transpose(1, 2, 0)
    assert want.shape[:2] == (out_h, out_w)
    canvas = np.zeros((60, 60, 3), np.float32)
    canvas[:n_in, : n_in - 5] = image
    got = rw._resize(
        jnp.asarray(canvas),
        rw.MODES.index(mode),
        jnp.asarray([out_h, out_w], jnp.float32),
        jnp.asarray([n_in, n_in - 5], jnp.float32),
        ratio,
        (64, 64),
    )
    got = np.asarray(got)
    np.testing.assert_allclose(got[:out_h, :out_w], want, atol=2e-6)
    assert not got[out_h:].any() and not got[:, out_w:].any()


def test_poisson_counts_follow_the_poisson_law():
    """The CDF-table sampler of the Poisson noise against scipy's Poisson law, at
    rates from 0 to 256 (8-bit value k, power of two 2^e): the empirical CDF of 20,000
    draws within the Dvoretzky-Kiefer-Wolfowitz bound (false alarm 1e-4), and the
    mean within 5 standard errors."""
    import jax
    from scipy import stats

    values, exponents, n = np.array([0, 1, 7, 40, 128, 255]), np.array([0, 3, 8, 5, 8, 8]), 20000
    counts = np.asarray(
        rw._poisson_counts(
            jax.random.key(0),
            jnp.broadcast_to(jnp.asarray(values)[:, None], (6, n)),
            jnp.broadcast_to(jnp.asarray(exponents)[:, None], (6, n)),
        )
    )
    assert np.array_equal(counts, np.round(counts)) and not counts[0].any()
    bound = np.sqrt(np.log(2 / 1e-4) / (2 * n))
    for value, exponent, draws in zip(values[1:], exponents[1:], counts[1:], strict=True):
        lam = value / 255 * 2.0**exponent
        grid = np.arange(draws.max() + 2)
        empirical = (draws[:, None] <= grid).mean(0)
        assert np.abs(empirical - stats.poisson.cdf(grid, lam)).max() < bound, lam
        assert abs(draws.mean() - lam) < 5 * np.sqrt(lam / n), (lam, draws.mean())


def test_degrade_is_one_static_program_on_the_device():
    import jax

    from jaxsr.data import builtin_photo

    config = rw.default_config()
    hr = np.stack([builtin_photo(n)[:96, :96] for n in ("astronaut", "chelsea", "coffee")])
    hr = jnp.asarray(hr, jnp.float32) / 255
    fn = jax.jit(lambda key, x: rw.degrade(key, x, config))
    text = fn.lower(jax.random.key(0), hr).as_text()
    assert "callback" not in text and "custom_call" not in text.replace("Sharding", "")
    outs = [fn(jax.random.key(i), hr) for i in range(4)]
    for out in outs:
        lq = np.asarray(out["lq"])
        assert lq.shape == (3, 24, 24, 3) and lq.min() >= 0 and lq.max() <= 1
        np.testing.assert_allclose(lq * 255, np.round(lq * 255), atol=1e-4)  # 8-bit values
    np.testing.assert_array_equal(outs[0]["lq"], fn(jax.random.key(0), hr)["lq"])
    assert not np.array_equal(outs[0]["lq"], outs[1]["lq"])
    # Degraded well beyond a clean downsampling: on average far from the area-mean LR.
    clean = np.asarray(hr).reshape(3, 24, 4, 24, 4, 3).mean((2, 4))
    err = np.mean([np.abs(np.asarray(o["lq"]) - clean).mean() for o in outs])
    assert 0.02 < err < 0.3, err
    np.testing.assert_allclose(outs[0]["gt_usm"], rw.usm_sharp(hr), atol=1e-6)


def test_device_kernels_j1_and_windows():
    import jax
    from scipy import special

    x = np.linspace(0, 45, 901)
    np.testing.assert_allclose(rw._j1(jnp.asarray(x, jnp.float32)), special.j1(x), atol=2e-6)
    config = rw.default_config()
    keys = jax.random.split(jax.random.key(0), 64)
    kernels = np.asarray(jax.vmap(lambda k: rw.random_kernel(k, config))(keys))
    assert kernels.shape == (64, 21, 21)
    np.testing.assert_allclose(kernels.sum((1, 2)), 1.0, rtol=1e-5)
    # Each is zero outside a centred odd window (of 7..21 taps; a narrow Gaussian's
    # tails also underflow in float32 inside it), and the windows vary.
    sizes = set()
    for k in kernels:
        rows = np.flatnonzero(np.abs(k).sum(1) > 0)
        assert rows[0] + rows[-1] == 20 and len(rows) % 2 == 1
        sizes.add(len(rows))
    assert len(sizes) > 3
    # The final filter is a sinc (80 %) or the identity pulse.
    finals = np.asarray(jax.vmap(lambda k: rw.random_final_sinc(k, config))(keys))
    pulse = np.isclose(finals[:, 10, 10], 1.0) & np.isclose(np.abs(finals).sum((1, 2)), 1.0)
    assert 0.05 < pulse.mean() < 0.4
    # A device sinc equals the NumPy one for the same cutoff and size.
    got = np.asarray(rw._window(rw._sinc(jnp.float32(1.7), 21), 13, 21))
    np.testing.assert_allclose(got, rw.circular_lowpass_kernel(1.7, 13, pad_to=21), atol=1e-6)


@pytest.mark.slow
def test_degrade_draws_the_official_pipelines_distribution():
    """The same 48 crops (128², as small as PyTorch's reflection padding allows) of the
    builtin photos through ``degrade`` and through the
    official ``feed_data`` written in PyTorch (one image per batch, so every draw is
    per image on both sides): the distributions of the LR's PSNR against the clean
    area-downsampled crop and of its high-frequency energy (mean |Laplacian|) agree
    (two-sample Kolmogorov-Smirnov), and those of the pipeline with a tenth of its noise
    do not."""
    import jax
    import torch
    from scipy import stats

    from jaxsr.data import builtin_photo

    ref = _ref()
    rng = np.random.default_rng(0)
    names = ("astronaut", "chelsea", "coffee", "rocket")
    crops = []
    for i in range(48):
        photo = builtin_photo(names[i % 4])
        y, x = rng.integers(0, photo.shape[0] - 128), rng.integers(0, photo.shape[1] - 128)
        crops.append(photo[y : y + 128, x : x + 128])
    hr = np.stack(crops).astype(np.float32) / 255
    config = rw.default_config()

    def measures(lq):
        clean = hr.reshape(-1, 32, 4, 32, 4, 3).mean((2, 4))
        psnr = -10 * np.log10(np.mean((lq - clean) ** 2, (1, 2, 3)))
        lap = 4 * lq[:, 1:-1, 1:-1] - lq[:, :-2, 1:-1] - lq[:, 2:, 1:-1]
        lap = lap - lq[:, 1:-1, :-2] - lq[:, 1:-1, 2:]
        return psnr, np.abs(lap).mean((1, 2, 3))

    fn = jax.jit(lambda key, x: rw.degrade(key, x, config)["lq"])
    ours = np.asarray(fn(jax.random.key(0), hr))
    ref.seed(0)
    nchw = torch.from_numpy(hr.transpose(0, 3, 1, 2).copy())
    theirs = torch.cat([ref.feed_data(nchw[i : i + 1], config) for i in range(len(hr))])
    quiet = rw.default_config()
    for stage in ("", "2"):
        for key in (f"noise_range{stage}", f"poisson_scale_range{stage}"):
            quiet[key] = tuple(v / 10 for v in quiet[key])
    quiet_lq = torch.cat([ref.feed_data(nchw[i : i + 1], quiet) for i in range(len(hr))])
    theirs, quiet_lq = (t.numpy().transpose(0, 2, 3, 1) for t in (theirs, quiet_lq))
    apart = []
    for name, a, b, c in zip(
        ("PSNR", "high-frequency energy"),
        measures(ours),
        measures(theirs),
        measures(quiet_lq),
        strict=True,
    ):
        p = stats.ks_2samp(a, b).pvalue
        assert p > 0.01, (name, p, np.median(a), np.median(b))
        apart.append(stats.ks_2samp(b, c).pvalue)
    assert min(apart) < 0.01, apart  # the measures can tell another pipeline apart
