"""MATLAB ``imresize(..., 'bicubic')`` for numpy (host, float64) and JAX (device, jittable).

Super-resolution benchmarks define their low-resolution inputs as MATLAB's bicubic
downscaling of the high-resolution image, so PSNR tables are only comparable when
the LR images are made the same way. MATLAB's resize differs from ``jax.image.resize``
and PIL in three ways that matter:

* the cubic kernel (Keys, a = -0.5) is stretched by ``1/scale`` when shrinking, so
  it low-pass filters (antialiasing) with width ``4/scale`` taps;
* out-of-range taps read the image mirrored *with* the edge pixel repeated
  ("symmetric" padding);
* the output size is ``ceil(size * scale)``.

DASR's degradation code (a PyTorch port of the same resize) clamps out-of-range taps
to the edge pixel instead of mirroring; ``boundary='edge'`` reproduces that.

Each axis is a linear map, so the resize is two small matrix products (rows, then
columns, as MATLAB orders equal scales). The weights are built once on the host from
the static shapes; on device the products run on the MXU / tensor cores.

``uint8`` semantics: for ``uint8`` input MATLAB returns ``uint8`` after *each* axis
pass (round half away from zero, saturate), i.e. the intermediate image after the
row pass is already quantised. :func:`imresize_uint8` reproduces that.
"""

from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


def output_size(size: int, scale: float) -> int:
    """MATLAB's output length: ``ceil(size * scale)``."""
    # The tiny tolerance keeps e.g. 3 * (1/3) from becoming 1.0000000002 -> 2.
    return int(math.ceil(size * scale - 1e-9))


BOUNDARIES = ("symmetric", "edge")


@functools.lru_cache(maxsize=256)
def contributions(
    in_length: int, out_length: int, scale: float, boundary: str = "symmetric"
) -> tuple[np.ndarray, np.ndarray]:
    """Taps of each output sample along one axis.

    Returns ``(weights, indices)``, both ``(out_length, taps)``: output ``i`` is
    ``sum_t weights[i, t] * input[indices[i, t]]``. Indices are already folded back
    into ``[0, in_length)`` with MATLAB's symmetric rule (or clamped to the edge with
    ``boundary='edge'``); weights are normalised to sum to one per output sample
    (MATLAB does this, it matters at the borders).
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"Unknown boundary {boundary!r}; choose one of {BOUNDARIES}.")
    kernel_width = 4.0
    if scale < 1:
        kernel = lambda t: scale * cubic(scale * t)  # noqa: E731 - stretched kernel
        kernel_width = kernel_width / scale
    else:
        kernel = cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)  # 1-based like MATLAB
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # input coordinate of each output centre
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # 1-based input positions
    weights = kernel(u[:, None] - idx)
    weights = weights / weights.sum(axis=1, keepdims=True)
    if boundary == "edge":
        indices = np.clip(idx.astype(np.int64) - 1, 0, in_length - 1)
    else:  # symmetric padding: ... 2 1 | 1 2 3 ... n | n n-1 ...
        mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
        indices = mirror[np.mod(idx.astype(np.int64) - 1, mirror.size)]
    keep = np.any(weights != 0, axis=0)  # drop all-zero tap columns, as MATLAB does
    return weights[:, keep], indices[:, keep]


@functools.lru_cache(maxsize=256)
def resize_matrix(
    in_length: int, out_length: int, scale: float, boundary: str = "symmetric"
) -> np.ndarray:
    """Dense ``(out_length, in_length)`` float64 matrix of one axis' resize."""
    weights, indices = contributions(in_length, out_length, scale, boundary)
    mat = np.zeros((out_length, in_length), np.float64)
    rows = np.repeat(np.arange(out_length), weights.shape[1])
    np.add.at(mat, (rows, indices.ravel()), weights.ravel())
    return mat


def _sizes(shape: tuple[int, ...], scale: float, size: tuple[int, int] | None):
    h, w = shape[-3], shape[-2]
    if size is not None:
        return (size[0], size[1]), (size[0] / h, size[1] / w)
    return (output_size(h, scale), output_size(w, scale)), (scale, scale)


def _round_half_away(x):
    return np.floor(x + 0.5) if isinstance(x, np.ndarray) else jnp.floor(x + 0.5)


def imresize(
    x,
    scale: float = 1.0,
    size: tuple[int, int] | None = None,
    *,
    quantize: bool = False,
    boundary: str = "symmetric",
    host_dtype=np.float64,
):
    """Bicubic resize with MATLAB semantics of an ``(..., H, W, C)`` image batch.

    Args:
      x: numpy array (computed in float64 on the host) or JAX array (computed on
        device in ``x.dtype``; jittable, shapes must be static). Float values, any
        range: 0-1 and 0-255 both work since the map is linear.
      scale: factor for both axes, e.g. ``1/4`` to make ×4 LR images.
      size: explicit ``(height, width)``, overriding ``scale``.
      quantize: emulate MATLAB's ``uint8`` path: values are on the 0-255 scale and
        are rounded (half away from zero) and clipped to [0, 255] after each axis.
      boundary: ``'symmetric'`` (MATLAB) or ``'edge'`` (DASR's degradation code).
      host_dtype: the arithmetic of the numpy path (float64; ``np.float32`` reproduces
        BasicSR's torch ``imresize``, which NIQE's float32 mode needs).

    Returns:
      The resized array, same kind (numpy / JAX) and float dtype as computed.
    """
    (oh, ow), (sh, sw) = _sizes(x.shape, scale, size)
    h, w = x.shape[-3], x.shape[-2]
    on_host = isinstance(x, np.ndarray)
    xp = np if on_host else jnp

    def one_axis(y, mat, axis):
        if on_host:
            out = np.tensordot(mat.astype(host_dtype, copy=False), y, axes=([1], [axis]))
            out = np.moveaxis(out, 0, axis)
        else:
            # HIGHEST keeps float32 accuracy on TPUs/GPUs that would use bf16 passes.
            letters = "abcdefgh"[: y.ndim]
            src = letters
            dst = letters[:axis] + "z" + letters[axis + 1 :]
            out = jnp.einsum(
                f"z{letters[axis]},{src}->{dst}",
                jnp.asarray(mat, y.dtype),
                y,
                precision="highest",
            )
        if quantize:
            out = xp.clip(_round_half_away(out), 0, 255)
        return out

    y = x.astype(host_dtype) if on_host else x
    # MATLAB resizes the axis with the smaller scale first; rows first on ties.
    order = [(-3, h, oh, sh), (-2, w, ow, sw)]
    if sw < sh:
        order.reverse()
    for axis, n_in, n_out, s in order:
        if n_in == n_out and s == 1:
            continue
        y = one_axis(y, resize_matrix(n_in, n_out, s, boundary), y.ndim + axis)
    return y


def imresize_uint8(img: np.ndarray, scale: float = 1.0, size=None) -> np.ndarray:
    """MATLAB ``imresize(uint8_img, scale, 'bicubic')`` on the host: uint8 in, uint8 out."""
    if img.dtype != np.uint8:
        raise TypeError(f"imresize_uint8 expects a uint8 image, got {img.dtype}.")
    squeeze = img.ndim == 2
    x = img[..., None] if squeeze else img
    out = imresize(x.astype(np.float64), scale, size, quantize=True).astype(np.uint8)
    return out[..., 0] if squeeze else out


def keys_cubic_taps(num: int, den: int, a: float = -0.75):
    """``[(first tap, 4 weights)]`` per output phase of a resize by ``num/den`` (< 1 or
    > 1) with OpenCV's ``INTER_CUBIC`` / ncnn's ``Interp`` (resize_type 3) bicubic:
    Keys' kernel with ``a = -0.75``, half-pixel centres, no antialiasing when shrinking.
    Output ``num·q + r`` reads inputs ``den·q + first_r + (-1, 0, 1, 2)``: the weights
    repeat every ``num`` outputs, so the resize is ``num`` strided sums at any size."""
    phases = []
    for r in range(num):
        x = (r + 0.5) * den / num - 0.5
        left = math.floor(x)
        t = x - left
        d = np.array([t + 1, t, 1 - t, 2 - t])
        w = np.where(
            d <= 1, (a + 2) * d**3 - (a + 3) * d**2 + 1, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
        )
        w[3] = 1.0 - w[:3].sum()
        phases.append((left, w.astype(np.float32)))
    return phases


def keys_cubic_resize(x, axis: int, num: int, den: int):
    """Resize ``x`` along ``axis`` by ``num/den`` (its size a multiple of ``den``) with
    :func:`keys_cubic_taps`; the border pixel repeats (ncnn folds the taps past the
    border onto it, which is the same). In lax slices: any (symbolic) size, and work
    linear in the size. Used by the ×2/×3 ``realesr-animevideov3`` releases, which are
    the ×4 network resized by ncnn's bicubic."""
    import jax

    n = x.shape[axis]
    phases = keys_cubic_taps(num, den)
    lo = 1 - min(left for left, _ in phases)
    hi = max(left for left, _ in phases) + 3
    edge = lambda i: jax.lax.slice_in_dim(x, i, i + 1, axis=axis)  # noqa: E731
    xp = jax.lax.concatenate([edge(0)] * lo + [x] + [edge(n - 1)] * hi, axis)
    count = n // den
    outs = []
    for left, w in phases:
        acc = 0.0
        for j in range(4):
            start = lo + left - 1 + j
            tap = jax.lax.slice_in_dim(xp, start, start + den * (count - 1) + 1, den, axis)
            acc = acc + float(w[j]) * tap
        outs.append(acc)
    stacked = jnp.stack(outs, axis=axis + 1)
    shape = list(x.shape)
    shape[axis] = count * num
    return stacked.reshape(shape)
