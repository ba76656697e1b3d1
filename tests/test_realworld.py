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


def _torch_filter2d(img, kernel):
    """BasicSR ``filter2D``: reflect pad, one grouped conv over batch × channels."""
    import torch.nn.functional as F

    k = kernel.size(-1)
    b, c, h, w = img.size()
    img = F.pad(img, (k // 2, k // 2, k // 2, k // 2), mode="reflect")
    ph, pw = img.size()[-2:]
    if kernel.size(0) == 1:
        return F.conv2d(img.view(b * c, 1, ph, pw), kernel.view(1, 1, k, k)).view(b, c, h, w)
    img = img.view(1, b * c, ph, pw)
    kernel = kernel.view(b, 1, k, k).repeat(1, c, 1, 1).view(b * c, 1, k, k)
    return F.conv2d(img, kernel, groups=b * c).view(b, c, h, w)


def _nchw(x):
    import torch

    return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def test_filter2d_and_usm_equal_basicsr():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    images = rng.random((3, 40, 36, 3), dtype=np.float32)
    kernels = rng.random((3, 7, 7)).astype(np.float32)
    want = _torch_filter2d(_nchw(images), torch.from_numpy(kernels)).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(
        rw.filter2d(jnp.asarray(images), jnp.asarray(kernels)), want, rtol=1e-6
    )

    # USMSharp(radius=50): OpenCV's getGaussianKernel(51, 0) has σ = 0.3·(25 - 1) + 0.8 = 8.
    x = np.arange(51) - 25.0
    g = np.exp(-(x**2) / (2 * 8.0**2))
    g /= g.sum()
    kernel = torch.from_numpy(np.outer(g, g).astype(np.float32))[None]
    img = _nchw(images)
    blur = _torch_filter2d(img, kernel)
    residual = img - blur
    mask = (torch.abs(residual) * 255 > 10).float()
    soft = _torch_filter2d(mask, kernel)
    sharp = torch.clip(img + 0.5 * residual, 0, 1)
    want = (soft * sharp + (1 - soft) * img).numpy().transpose(0, 2, 3, 1)
    got = np.asarray(rw.usm_sharp(jnp.asarray(images)))
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert np.abs(got - images).max() > 0.05  # it did sharpen


# -- JPEG ---------------------------------------------------------------------------------


def _torch_diffjpeg(img, quality):
    """BasicSR ``DiffJPEG(differentiable=False)``, its steps in its own layout."""
    import torch
    import torch.nn.functional as F

    y_table = torch.tensor(
        np.array(
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
        ).T
    )
    c_table = np.full((8, 8), 99, np.float32)
    c_table[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]
    c_table = torch.tensor(c_table.T)
    factor = torch.tensor([5000.0 / q if q < 50 else 200.0 - 2 * q for q in quality]) / 100
    b, _, h, w = img.shape
    img = F.pad(img, (0, -w % 16, 0, -h % 16))
    H, W = img.shape[-2:]
    m = torch.tensor(
        [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
    ).T
    ycc = torch.tensordot(img.permute(0, 2, 3, 1) * 255, m, dims=1) + torch.tensor(
        [0.0, 128.0, 128.0]
    )
    chans = {"y": ycc[..., 0]}
    for i, name in ((1, "cb"), (2, "cr")):
        chans[name] = F.avg_pool2d(ycc[..., i].unsqueeze(1), 2, 2, count_include_pad=False)[:, 0]
    basis = np.zeros((8, 8, 8, 8), np.float32)
    for x, yy, u, v in np.ndindex(8, 8, 8, 8):
        basis[x, yy, u, v] = math.cos((2 * x + 1) * u * math.pi / 16) * math.cos(
            (2 * yy + 1) * v * math.pi / 16
        )
    alpha = np.array([1.0 / np.sqrt(2)] + [1] * 7)
    scale = torch.from_numpy(np.outer(alpha, alpha) * 0.25).float()
    basis = torch.from_numpy(basis)
    inv = torch.from_numpy(np.ascontiguousarray(basis.numpy().transpose(2, 3, 0, 1)))
    out = {}
    for name, chan in chans.items():
        hh, ww = chan.shape[1:]
        blocks = (
            chan.view(b, hh // 8, 8, -1, 8).permute(0, 1, 3, 2, 4).contiguous().view(b, -1, 8, 8)
        )
        coef = scale * torch.tensordot(blocks - 128, basis, dims=2)
        table = (y_table if name == "y" else c_table).expand(b, 1, 8, 8) * factor.view(b, 1, 1, 1)
        coef = torch.round(coef.float() / table) * table
        blocks = (
            0.25
            * torch.tensordot(coef * torch.from_numpy(np.outer(alpha, alpha)).float(), inv, dims=2)
            + 128
        )
        merged = (
            blocks.view(b, hh // 8, ww // 8, 8, 8)
            .permute(0, 1, 3, 2, 4)
            .contiguous()
            .view(b, hh, ww)
        )
        if name != "y":
            merged = merged.unsqueeze(-1).repeat(1, 1, 2, 2).view(-1, hh * 2, ww * 2)
        out[name] = merged
    ycc = torch.stack([out["y"], out["cb"], out["cr"]], -1)
    back = torch.tensor([[1.0, 0.0, 1.402], [1, -0.344136, -0.714136], [1, 1.772, 0]]).T
    rgb = torch.tensordot(ycc + torch.tensor([0, -128.0, -128.0]), back, dims=1).permute(0, 3, 1, 2)
    rgb = torch.clamp(rgb, 0, 255) / 255
    return rgb[:, :, :h, :w]


def test_jpeg_equals_basicsr_diffjpeg_per_image_quality():
    pytest.importorskip("torch")
    from jaxsr.data import builtin_photo

    photo = builtin_photo("astronaut")[100:172, 150:238].astype(np.float32) / 255  # 72×88
    rng = np.random.default_rng(0)
    images = np.stack([photo, rng.random(photo.shape, dtype=np.float32), photo[::-1]])
    quality = np.array([30.0, 57.5, 95.0], np.float32)
    want = _torch_diffjpeg(_nchw(images), quality).numpy().transpose(0, 2, 3, 1)
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
