"""Layers shared by the architectures: a PyTorch-initialised convolution.

Flax's ``nn.Conv`` initialises biases to zero and kernels with LeCun normal. The
official PyTorch models were trained from ``nn.Conv2d``'s default init (Kaiming-uniform
with a = sqrt(5): weights and biases ~ U(±1/sqrt(fan_in))), and ESRGAN's "smaller
initialisation" scales a Kaiming-normal init by 0.1. Reproducing both matters for
training from scratch as the papers did, so the convolution here takes the init as
a parameter and keeps Flax's parameter names (``kernel`` HWIO, ``bias``) so that
checkpoint conversion is one transpose per tensor.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def torch_default_init(fan_in: int):
    """``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``: PyTorch's default for conv/linear params."""
    bound = 1.0 / math.sqrt(fan_in)
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(
        key, shape, dtype, -bound, bound
    )


def kaiming_normal_scaled(scale: float):
    """Kaiming-normal (fan_in, gain sqrt(2)) times ``scale`` (BasicSR ``default_init_weights``)."""
    return nn.initializers.variance_scaling(2.0 * scale * scale, "fan_in", "normal")


class Conv(nn.Module):
    """2-D convolution, NHWC, ``'same'``-style zero padding of ``kernel_size // 2``.

    Attributes:
      features: output channels.
      kernel_size: square kernel size.
      strides: stride in both axes.
      padding: explicit symmetric padding (defaults to ``kernel_size // 2``).
      use_bias: add a bias.
      init_scale: ``None`` for PyTorch's default init, else Kaiming-normal × scale
        with zero bias.
      dtype: compute dtype (parameters stay float32).
    """

    features: int
    kernel_size: int = 3
    strides: int = 1
    padding: int | None = None
    use_bias: bool = True
    init_scale: float | None = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        fan_in = x.shape[-1] * k * k
        if self.init_scale is None:
            kernel_init, bias_init = torch_default_init(fan_in), torch_default_init(fan_in)
        else:
            kernel_init, bias_init = kaiming_normal_scaled(self.init_scale), nn.initializers.zeros
        kernel = self.param("kernel", kernel_init, (k, k, x.shape[-1], self.features))
        pad = k // 2 if self.padding is None else self.padding
        y = jax.lax.conv_general_dilated(
            x.astype(self.dtype),
            kernel.astype(self.dtype),
            window_strides=(self.strides, self.strides),
            padding=((pad, pad), (pad, pad)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        if self.use_bias:
            y = y + self.param("bias", bias_init, (self.features,)).astype(self.dtype)
        return y


def leaky_relu(x, slope: float = 0.2):
    return jnp.where(x >= 0, x, slope * x)


def upsample_nearest(x, factor: int = 2):
    """``F.interpolate(scale_factor=factor, mode='nearest')`` for NHWC."""
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)
