"""PyTorch-ordered pixel shuffle / unshuffle for NHWC arrays.

``torch.nn.PixelShuffle(r)`` sends input channel ``c*r*r + i*r + j`` to output pixel
``(h*r + i, w*r + j)`` of channel ``c``. TensorFlow's ``depth_to_space`` orders the
channels ``(i*r + j)*C + c`` instead, so official weights would be silently scrambled
by it. BasicSR's ``pixel_unshuffle`` is the exact inverse used by RRDBNet ×1/×2.
"""

from __future__ import annotations

import jax.numpy as jnp


def pixel_shuffle(x: jnp.ndarray, r: int) -> jnp.ndarray:
    """``(N, H, W, C*r*r) -> (N, H*r, W*r, C)`` in PyTorch channel order."""
    n, h, w, crr = x.shape
    c = crr // (r * r)
    x = x.reshape(n, h, w, c, r, r)
    x = x.transpose(0, 1, 4, 2, 5, 3)  # n, h, i, w, j, c
    return x.reshape(n, h * r, w * r, c)


def pixel_unshuffle(x: jnp.ndarray, r: int) -> jnp.ndarray:
    """``(N, H*r, W*r, C) -> (N, H, W, C*r*r)``, the inverse of :func:`pixel_shuffle`."""
    n, hr, wr, c = x.shape
    if hr % r or wr % r:
        raise ValueError(f"pixel_unshuffle by {r} needs H and W divisible by {r}, got {hr}x{wr}.")
    h, w = hr // r, wr // r
    x = x.reshape(n, h, r, w, r, c)
    x = x.transpose(0, 1, 3, 5, 2, 4)  # n, h, w, c, i, j
    return x.reshape(n, h, w, c * r * r)
