"""Colour conversions used by the SR evaluation protocol.

MATLAB's ``rgb2ycbcr`` (ITU-R BT.601, studio swing) is what published PSNR-Y/SSIM-Y
numbers use: for RGB in [0, 1], ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` on the
0-255 scale.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

_Y_WEIGHTS = (65.481, 128.553, 24.966)


def rgb_to_y(img, *, max_value: float = 255.0):
    """Y of BT.601 on the 0-255 scale from an RGB ``(..., 3)`` array in [0, max_value].

    Works on numpy (float64) and JAX arrays alike.
    """
    xp = np if isinstance(img, np.ndarray) else jnp
    rgb = img.astype(np.float64) if xp is np else img
    w = xp.asarray(_Y_WEIGHTS, dtype=rgb.dtype) / 255.0
    return 16.0 + (rgb * (255.0 / max_value)) @ w


def to_uint8(img):
    """Float [0, 1] -> uint8 the way SR code saves images: clip, scale, round half up."""
    xp = np if isinstance(img, np.ndarray) else jnp
    return xp.floor(xp.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(xp.uint8)
