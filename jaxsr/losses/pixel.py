"""Pixel losses. Each takes ``(pred, target)`` arrays and returns a scalar mean."""

from __future__ import annotations

import jax.numpy as jnp


def l1_loss(pred, target):
    """Mean absolute error (ESRGAN PSNR stage, DASR)."""
    return jnp.mean(jnp.abs(pred - target))


def mse_loss(pred, target):
    """Mean squared error."""
    return jnp.mean(jnp.square(pred - target))


def charbonnier_loss(pred, target, eps: float = 1e-3):
    """``mean(sqrt((x - y)^2 + eps^2))``, MIRNet's loss (ε = 1e-3)."""
    return jnp.mean(jnp.sqrt(jnp.square(pred - target) + eps * eps))


PIXEL_LOSSES = {"l1": l1_loss, "mse": mse_loss, "charbonnier": charbonnier_loss}
