"""Real-CUGAN (bilibili's "Cascaded U-Net GAN" for anime upscaling), ×2 / ×3 / ×4.

The official ``Real-CUGAN/upcunet_v3.py`` (bilibili/ailab): two U-Nets in cascade
of *valid* (unpadded) 3×3 convolutions, strided 2×2 convolutions down and transposed
convolutions up, with squeeze-and-excitation (SE) blocks. ``unet1`` upscales (its last
layer is a transposed conv: kernel 4, stride 2, padding 3 for ×2/×4; kernel 5, stride 3,
padding 2 for ×3); ``unet2`` refines at the output size and its output is added to
``unet1``'s, cropped by 20 px. ×4 is ×2 at 64 channels, a valid 3×3 conv to 12
channels cropped by 1, a pixel shuffle and the nearest-×4 input added.

:meth:`RealCUGAN.__call__` is the official forward with ``tile_mode=0``: reflect
padding of 18 / 14 / 19 px (×2 / ×3 / ×4) plus up to a multiple of 2 / 4 / 2, both
U-Nets, the crop to ``scale × input``. The ``pro`` releases map the input to
``0.7·x + 0.15`` before and the output back by ``(y - 0.15) / 0.7`` after, as the
official code does for them. :meth:`RealCUGAN.network` is the padded-in, cropped-out
graph alone: what the ncnn files hold (their program pads and adds the ×4 residual).

Parameter names follow the official ``state_dict`` with ``.`` as ``/`` and
``conv.0``/``conv.2`` as ``conv_0``/``conv_2``. Parameter counts: ×2 1,284,598;
×3 1,286,326; ×4 1,406,812 (``se`` and ``pro`` alike: pro changes only the mapping).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models.layers import Conv, upsample_nearest
from jaxsr.ops.padding import reflect_pad, round_up
from jaxsr.ops.pixel_shuffle import pixel_shuffle

# scale -> (reflect padding, size multiple) of the official tile_mode 0 forward
_PADDING = {2: (18, 2), 3: (14, 4), 4: (19, 2)}


def _lrelu(x):
    return jax.nn.leaky_relu(x, 0.1)


def _crop(x, n: int):
    """``F.pad(x, (-n, -n, -n, -n))``, in lax slices (symbolic sizes export)."""
    x = jax.lax.slice_in_dim(x, n, x.shape[1] - n, axis=1)
    return jax.lax.slice_in_dim(x, n, x.shape[2] - n, axis=2)


class ConvTransposeValid(nn.Module):
    """``nn.ConvTranspose2d(C, C', k, stride, padding)`` with bias, output
    ``(i - 1)·stride - 2·padding + k``. ``kernel`` keeps PyTorch's weight as
    ``(k, k, in, out)`` (``weight.transpose(2, 3, 0, 1)``)."""

    features: int
    kernel_size: int
    stride: int
    padding: int = 0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        k, s, p = self.kernel_size, self.stride, self.padding
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (k, k, x.shape[-1], self.features)
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        if k == s and p == 0:
            # Non-overlapping taps (the 2×2, stride-2 up-convs): each input pixel writes
            # its own k×k block, a matrix product then a depth-to-space; the dilated
            # convolution below would multiply (s² - 1)/s² zeros.
            n, h, w, _ = x.shape
            y = jnp.einsum("nhwc,abco->nhawbo", x.astype(self.dtype), kernel.astype(self.dtype))
            y = y.reshape(n, h * k, w * k, self.features)
            return y + bias.astype(self.dtype)
        y = jax.lax.conv_general_dilated(
            x.astype(self.dtype),
            kernel[::-1, ::-1].astype(self.dtype),
            window_strides=(1, 1),
            padding=[(k - 1 - p, k - 1 - p)] * 2,
            lhs_dilation=(s, s),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return y + bias.astype(self.dtype)


class SEBlock(nn.Module):
    """Squeeze-and-excitation: the channel mean through two 1×1 convs (reduction 8,
    ReLU, sigmoid) scales the channels."""

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        # The mean in float32, as the official code does for half precision.
        s = jnp.mean(x.astype(jnp.float32), axis=(1, 2), keepdims=True).astype(self.dtype)
        s = nn.relu(Conv(c // 8, kernel_size=1, padding=0, dtype=self.dtype, name="conv1")(s))
        s = jax.nn.sigmoid(Conv(c, kernel_size=1, padding=0, dtype=self.dtype, name="conv2")(s))
        return x * s


class UNetConv(nn.Module):
    """Two valid 3×3 convs with LeakyReLU(0.1), then an optional SE block."""

    mid: int
    out: int
    se: bool
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x = _lrelu(Conv(self.mid, padding=0, dtype=self.dtype, name="conv_0")(x))
        x = _lrelu(Conv(self.out, padding=0, dtype=self.dtype, name="conv_2")(x))
        return SEBlock(dtype=self.dtype, name="seblock")(x) if self.se else x


class UNet1(nn.Module):
    """The upscaling U-Net (``UNet1``, or ``UNet1x3`` with ``scale=3``)."""

    out_channels: int
    scale: int = 2
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        d = self.dtype
        x1 = UNetConv(32, 64, se=False, dtype=d, name="conv1")(x)
        x2 = _lrelu(Conv(64, kernel_size=2, strides=2, padding=0, dtype=d, name="conv1_down")(x1))
        x2 = UNetConv(128, 64, se=True, dtype=d, name="conv2")(x2)
        x2 = _lrelu(ConvTransposeValid(64, 2, 2, dtype=d, name="conv2_up")(x2))
        x3 = _lrelu(Conv(64, padding=0, dtype=d, name="conv3")(_crop(x1, 4) + x2))
        k, s, p = (5, 3, 2) if self.scale == 3 else (4, 2, 3)
        return ConvTransposeValid(self.out_channels, k, s, p, dtype=d, name="conv_bottom")(x3)


class UNet2(nn.Module):
    """The refining U-Net at the output size (``UNet2``, two levels down)."""

    out_channels: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        d = self.dtype
        x1 = UNetConv(32, 64, se=False, dtype=d, name="conv1")(x)
        x2 = _lrelu(Conv(64, kernel_size=2, strides=2, padding=0, dtype=d, name="conv1_down")(x1))
        x2 = UNetConv(64, 128, se=True, dtype=d, name="conv2")(x2)
        x3 = _lrelu(Conv(128, kernel_size=2, strides=2, padding=0, dtype=d, name="conv2_down")(x2))
        x3 = UNetConv(256, 128, se=True, dtype=d, name="conv3")(x3)
        x3 = _lrelu(ConvTransposeValid(128, 2, 2, dtype=d, name="conv3_up")(x3))
        x4 = UNetConv(64, 64, se=True, dtype=d, name="conv4")(_crop(x2, 4) + x3)
        x4 = _lrelu(ConvTransposeValid(64, 2, 2, dtype=d, name="conv4_up")(x4))
        x5 = _lrelu(Conv(64, padding=0, dtype=d, name="conv5")(_crop(x1, 16) + x4))
        return Conv(self.out_channels, padding=0, dtype=d, name="conv_bottom")(x5)


class RealCUGAN(nn.Module):
    """``UpCunet{2,3,4}x``: input ``(N, H, W, 3)`` in [0, 1] of any size →
    ``(N, sH, sW, 3)``.

    Attributes:
      scale: 2, 3 or 4.
      pro: the ``pro`` releases' input/output mapping.
      dtype: compute dtype (parameters stay float32).
    """

    scale: int = 2
    pro: bool = False
    dtype: Any = jnp.float32

    @property
    def min_side(self) -> int:
        """The smallest side the forward takes: reflect padding must stay inside."""
        pad, m = _PADDING[self.scale]
        return pad + m

    def setup(self):
        if self.scale not in _PADDING:
            raise ValueError(f"Real-CUGAN has scales 2, 3 and 4, not {self.scale}.")
        hidden = 64 if self.scale == 4 else 3
        self.unet1 = UNet1(hidden, scale=self.scale, dtype=self.dtype)
        self.unet2 = UNet2(hidden, dtype=self.dtype)
        if self.scale == 4:
            self.conv_final = Conv(12, padding=0, dtype=self.dtype)

    def network(self, x):
        """The graph on an already padded input (what the ncnn files hold)."""
        x = self.unet1(x.astype(self.dtype))
        x = self.unet2(x) + _crop(x, 20)
        if self.scale == 4:
            x = pixel_shuffle(_crop(self.conv_final(x), 1), 2)
        return x.astype(jnp.float32)

    def __call__(self, x):
        x = x.astype(jnp.float32)
        if self.pro:
            x = x * 0.7 + 0.15
        _, h, w, _ = x.shape
        pad, m = _PADDING[self.scale]
        padded = reflect_pad(x, 1, pad, pad + round_up(h, m) - h)
        padded = reflect_pad(padded, 2, pad, pad + round_up(w, m) - w)
        y = self.network(padded)
        y = jax.lax.slice_in_dim(y, 0, h * self.scale, axis=1)
        y = jax.lax.slice_in_dim(y, 0, w * self.scale, axis=2)
        if self.scale == 4:
            y = y + upsample_nearest(x, 4)
        return (y - 0.15) / 0.7 if self.pro else y
