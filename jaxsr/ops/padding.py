"""Sides in multiples of what a network needs, for inputs of any size.

A network whose sides must be multiples of ``m`` (the ×2 RRDBNet's pixel-unshuffle,
pix2pixHD's downsamplings) runs any image the way Real-ESRGAN's inference does: the
bottom and right edges reflect-padded up to the next multiple, the output cropped back
to ``scale`` × the input's size.
"""

from __future__ import annotations

import jax


def pad_to_multiple(x, m: int):
    """Reflect-pad the bottom and right of ``x`` (``(N, H, W, ...)``) to sides that are
    multiples of ``m``. Equal to ``np.pad(x, ..., mode="reflect")`` by the exact
    amounts; a (concrete) side below ``m`` repeats its edge instead.

    Every size is written in terms of ``⌈H/m⌉``, so it also traces with symbolic sizes
    (an exported graph of any size).
    """
    if m == 1:
        return x
    for axis in (1, 2):
        n = x.shape[axis]
        if isinstance(n, int) and n < m:  # too small to reflect: repeat the edge
            widths = [(0, 0)] * x.ndim
            widths[axis] = (0, -n % m)
            x = jax.numpy.pad(x, widths, mode="edge")
            continue
        # Rows to add, (-n) mod m; no floor division of a negative size (ONNX truncates).
        k = round_up(n, m) - n
        # x[n-2], ..., x[n-1-k] in lax's slices, reversal and concatenation: jnp.pad's
        # reflect mode gathers and jnp.concatenate has its own shape rule in the ONNX
        # converter (jax2onnx 0.17), both wrong with symbolic sizes.
        mirror = jax.lax.rev(jax.lax.slice_in_dim(x, n - 1 - k, n - 1, axis=axis), (axis,))
        x = jax.lax.concatenate([x, mirror], axis)
    return x


def at_any_size(fn, m: int, scale: int, factors=(1,)):
    """``fn(*inputs)`` for inputs of any size ``>= m``: input ``i`` padded by
    :func:`pad_to_multiple` to multiples of ``m·factors[i]`` (its size relative to the
    first input's), the output cropped to ``scale`` × the first input's size."""
    if m == 1:
        return fn

    def run(*inputs):
        h, w = inputs[0].shape[1], inputs[0].shape[2]
        padded = [pad_to_multiple(x, m * f) for x, f in zip(inputs, factors, strict=True)]
        out = fn(*padded)  # cropped by lax slices: indexing gathers at symbolic sizes
        out = jax.lax.slice_in_dim(out, 0, scale * h, axis=1)
        return jax.lax.slice_in_dim(out, 0, scale * w, axis=2)

    return run


def reflect_pad(x, axis: int, before: int, after):
    """``np.pad(mode="reflect")`` of ``before`` and ``after`` rows on ``axis`` (PyTorch's
    ``F.pad(..., "reflect")``), in lax slices so that it traces with symbolic sizes
    (``after`` may be symbolic too). The side must exceed both amounts, as in PyTorch."""
    n = x.shape[axis]
    if isinstance(n, int) and isinstance(after, int) and n <= max(before, after):
        raise ValueError(f"Reflect padding of {max(before, after)} needs a side above it, not {n}.")
    parts = [x]
    if before:
        parts.insert(0, jax.lax.rev(jax.lax.slice_in_dim(x, 1, 1 + before, axis=axis), (axis,)))
    parts.append(jax.lax.rev(jax.lax.slice_in_dim(x, n - 1 - after, n - 1, axis=axis), (axis,)))
    return jax.lax.concatenate(parts, axis)


def round_up(n, m: int):
    """``n`` rounded up to a multiple of ``m``, without floor division of a negative
    size (ONNX's Div truncates): also for symbolic sizes."""
    return m * ((n + m - 1) // m)
