"""imresize (MATLAB bicubic), colour and pixel shuffle."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr.ops import imresize, imresize_uint8, pixel_shuffle, pixel_unshuffle, rgb_to_y, to_uint8
from jaxsr.ops.imresize import contributions


def _cubic(t):
    """Keys' kernel written out independently of jaxsr, one scalar at a time."""
    t = abs(t)
    if t <= 1:
        return 1.5 * t**3 - 2.5 * t**2 + 1
    if t <= 2:
        return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2
    return 0.0


def _matlab_resize_1d(v, scale):
    """Reference: MATLAB's imresize along one axis, loop by loop (1-based like MATLAB)."""
    n = len(v)
    out_n = math.ceil(n * scale)
    width = 4.0 / scale if scale < 1 else 4.0
    out = []
    for i in range(1, out_n + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        acc, norm = 0.0, 0.0
        for j in range(left, left + math.ceil(width) + 2):
            w = scale * _cubic(scale * (u - j)) if scale < 1 else _cubic(u - j)
            # symmetric padding: index 0 -> 1, -1 -> 2, n+1 -> n, ...
            k = j
            while k < 1 or k > n:
                k = 1 - k if k < 1 else 2 * n + 1 - k
            acc += w * v[k - 1]
            norm += w
        out.append(acc / norm)
    return np.array(out)


def _matlab_resize_2d(img, scale):
    rows = np.stack([_matlab_resize_1d(img[:, c], scale) for c in range(img.shape[1])], axis=1)
    return np.stack([_matlab_resize_1d(rows[r], scale) for r in range(rows.shape[0])], axis=0)


def test_half_scale_weights_by_hand():
    # ×1/2: kernel 0.5*cubic(0.5 t), 8 taps; for output 3 (1-based) u = 5.5, taps on inputs
    # 2..9 at distances ±0.5, ±1.5, ±2.5, ±3.5 -> 0.5 * cubic(0.25, 0.75, 1.25, 1.75).
    expected = np.array([-0.01171875, -0.03515625, 0.11328125, 0.43359375])
    expected = np.concatenate([expected, expected[::-1]])
    weights, indices = contributions(20, 10, 0.5)
    row = dict(zip(indices[2].tolist(), weights[2].tolist(), strict=True))
    got = np.array([row.get(i, 0.0) for i in range(1, 9)])  # 0-based inputs 1..8
    np.testing.assert_allclose(got, expected, atol=1e-15)
    # The first output reads beyond the border: MATLAB mirrors with the edge repeated.
    assert set(indices[0].tolist()) <= {0, 1, 2, 3, 4}


@pytest.mark.parametrize("scale", [1 / 4, 1 / 3, 1 / 2, 2, 3, 4])
def test_matches_reference_loop(scale):
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (13, 17))
    ref = _matlab_resize_2d(img, scale)
    got = imresize(img[..., None], scale)[..., 0]
    assert got.shape == ref.shape == (math.ceil(13 * scale), math.ceil(17 * scale))
    np.testing.assert_allclose(got, ref, atol=1e-9)


def test_jax_path_matches_numpy_and_jits():
    rng = np.random.default_rng(1)
    batch = rng.uniform(0, 1, (2, 32, 24, 3)).astype(np.float32)
    host = imresize(batch.astype(np.float64), 1 / 4)
    dev = jax.jit(lambda x: imresize(x, 1 / 4))(jnp.asarray(batch))
    assert dev.shape == (2, 8, 6, 3)
    np.testing.assert_allclose(np.asarray(dev), host, atol=2e-6)


def test_constant_and_linear_images():
    const = np.full((40, 40, 3), 0.7)
    np.testing.assert_allclose(imresize(const, 1 / 4), 0.7, atol=1e-12)
    # The cubic kernel reproduces linear functions, so away from the borders a ramp
    # stays a ramp sampled at the output pixel centres u = 4i - 1.5 (1-based).
    ramp = np.tile(np.arange(64, dtype=np.float64)[None, :, None], (64, 1, 1))
    out = imresize(ramp, 1 / 4)[0, :, 0]
    centres = 4 * np.arange(1, 17) - 1.5 - 1  # 0-based input coordinates
    np.testing.assert_allclose(out[2:-2], centres[2:-2], atol=1e-10)


def test_uint8_semantics_round_after_each_pass():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (30, 26, 3), dtype=np.uint8)
    got = imresize_uint8(img, 1 / 4)
    assert got.dtype == np.uint8 and got.shape == (8, 7, 3)
    rows = np.stack(
        [_matlab_resize_1d(img[:, c, k].astype(float), 0.25) for c in range(26) for k in range(3)],
        1,
    ).reshape(8, 26, 3)
    rows = np.clip(np.floor(rows + 0.5), 0, 255)  # MATLAB returns uint8 after the row pass
    ref = np.stack([_matlab_resize_1d(rows[r, :, k], 0.25) for r in range(8) for k in range(3)], 1)
    ref = np.clip(np.floor(ref.T.reshape(8, 3, 7).transpose(0, 2, 1) + 0.5), 0, 255)
    np.testing.assert_array_equal(got, ref.astype(np.uint8))
    # The on-device path with quantize=True is the same computation.
    dev = imresize(jnp.asarray(img[None], jnp.float32), 1 / 4, quantize=True)
    np.testing.assert_array_equal(np.asarray(dev[0]).astype(np.uint8), got)


def test_rgb_to_y_and_to_uint8():
    white = np.ones((1, 1, 3)) * 255
    np.testing.assert_allclose(rgb_to_y(white), 235.0, atol=1e-12)  # studio swing
    np.testing.assert_allclose(rgb_to_y(np.zeros((1, 3))), 16.0)
    np.testing.assert_array_equal(to_uint8(np.array([-0.1, 0.5, 1.2, 0.1 / 255])), [0, 128, 255, 0])


def test_pixel_shuffle_matches_torch_order():
    torch = pytest.importorskip("torch")
    x = np.arange(2 * 12 * 3 * 5, dtype=np.float32).reshape(2, 12, 3, 5)  # NCHW
    ref = torch.nn.PixelShuffle(2)(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    got = pixel_shuffle(jnp.asarray(x.transpose(0, 2, 3, 1)), 2)
    np.testing.assert_array_equal(np.asarray(got), ref)
    back = torch.nn.PixelUnshuffle(2)(torch.from_numpy(ref.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_array_equal(np.asarray(pixel_unshuffle(got, 2)), back.transpose(0, 2, 3, 1))
