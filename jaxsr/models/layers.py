"""Layers shared by the architectures: PyTorch-initialised convolutions.

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

from jaxsr.ops.pixel_shuffle import pixel_shuffle


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
      kernel_init: a Flax initializer replacing the kernel's init (pix2pixHD's N(0, 0.02));
        the bias keeps PyTorch's default.
      dtype: compute dtype (parameters stay float32).
    """

    features: int
    kernel_size: int = 3
    strides: int = 1
    padding: int | None = None
    use_bias: bool = True
    init_scale: float | None = None
    kernel_init: Any = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        fan_in = x.shape[-1] * k * k
        if self.init_scale is None:
            kernel_init, bias_init = torch_default_init(fan_in), torch_default_init(fan_in)
        else:
            kernel_init, bias_init = kaiming_normal_scaled(self.init_scale), nn.initializers.zeros
        if self.kernel_init is not None:
            kernel_init = self.kernel_init
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
    # jax.nn's, not a jnp.where: the same numbers, and exported to ONNX as one LeakyRelu,
    # which ONNX Runtime fuses into the conv before it (RRDBNet tiles 1.7x faster).
    return jax.nn.leaky_relu(x, slope)


def upsample_bilinear2x(x):
    """``F.interpolate(scale_factor=2, mode='bilinear', align_corners=False)`` for NHWC.

    With half-pixel centres, output pixel ``2i`` is ``¾·x[i] + ¼·x[i-1]`` and ``2i+1`` is
    ``¾·x[i] + ¼·x[i+1]``, the outside neighbour at a border being the edge pixel (as
    PyTorch clamps). Written as that stencil, not ``jax.image.resize``: two shifted
    adds instead of a dense resampling matrix per axis, and any symbolic size traces
    (an exported MIRNet or U-Net discriminator)."""
    return _up2_axis(_up2_axis(x, 1), 2)


def _up2_axis(x, axis: int):
    # lax slices and concatenations only: the ONNX converter's shape rules for
    # jnp.pad(mode="edge") and jnp.stack are wrong at symbolic sizes (jax2onnx 0.17).
    n = x.shape[axis]
    sl = lambda a, b: jax.lax.slice_in_dim(x, a, b, axis=axis)  # noqa: E731
    prev = jax.lax.concatenate([sl(0, 1), sl(0, n - 1)], axis)  # x[i-1], the edge at 0
    after = jax.lax.concatenate([sl(1, n), sl(n - 1, n)], axis)  # x[i+1], the edge at n-1
    three = jnp.asarray(0.75, x.dtype)
    quarter = jnp.asarray(0.25, x.dtype)
    pair = jax.lax.concatenate(
        [jax.lax.expand_dims(three * x + quarter * y, (axis + 1,)) for y in (prev, after)],
        axis + 1,
    )
    shape = list(x.shape)
    shape[axis] = 2 * n
    return pair.reshape(shape)


def upsample_nearest(x, factor: int = 2):
    """``F.interpolate(scale_factor=factor, mode='nearest')`` for NHWC."""
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


# Sub-pixel form of a k=3, stride-2, padding-1, output_padding-1 transposed conv: output
# row 2i+a reads input rows i+d (d = 0, 1) through tap _TAP[a][d] of the 3-tap kernel
# (None: no tap). Derived from o = 2i - 1 + t (PyTorch: o = stride·i - padding + t).
_TAP = ((1, None), (2, 0))


def conv_transpose_subpixel(x, kernel):
    """``ConvTranspose2d(k=3, stride=2, padding=1, output_padding=1)`` without bias, as a
    2×2 convolution producing the four output phases followed by a pixel shuffle.
    ``kernel`` holds PyTorch's taps as ``(3, 3, in, out)``. Same result as
    :func:`conv_transpose_dilated`, but an ordinary convolution in the forward and
    both backward passes: the dilated form's kernel gradient ran 10× slower on XLA:CPU."""
    zero = jnp.zeros_like(kernel[0, 0])

    def tap(a, d, b, e):
        th, tw = _TAP[a][d], _TAP[b][e]
        return zero if th is None or tw is None else kernel[th, tw]

    # A (2, 2, in, 4·out) kernel; output channel o*4 + a*2 + b is phase (a, b) of
    # channel o, the order pixel_shuffle expects.
    phases = [
        jnp.stack([tap(a, d, b, e) for a in (0, 1) for b in (0, 1)], -1)
        for d in (0, 1)
        for e in (0, 1)
    ]
    cin, cout = kernel.shape[2], kernel.shape[3]
    k = jnp.stack(phases).reshape(2, 2, cin, 4 * cout)
    y = jax.lax.conv_general_dilated(
        jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0))),
        k,
        window_strides=(1, 1),
        padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    return pixel_shuffle(y, 2)


def conv_transpose_dilated(x, kernel):
    """The textbook form of the same transposed conv: the input dilated by 2, padded
    ``k - 1 - padding`` = 1 before and 1 + output_padding = 2 after, convolved with the
    spatially flipped kernel. The reference :func:`conv_transpose_subpixel` is tested
    against."""
    return jax.lax.conv_general_dilated(
        x,
        kernel[::-1, ::-1],
        window_strides=(1, 1),
        padding=((1, 2), (1, 2)),
        lhs_dilation=(2, 2),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )


class ConvTranspose(nn.Module):
    """``nn.ConvTranspose2d(C, C', 3, stride=2, padding=1, output_padding=1)``: ×2 size.

    Computed in the sub-pixel form (:func:`conv_transpose_subpixel`). ``kernel`` keeps
    PyTorch's taps as ``(3, 3, in, out)`` (``weight.transpose(2, 3, 0, 1)``).

    Attributes:
      features: output channels.
      use_bias: add a bias (MIRNet: no; pix2pixHD: yes).
      kernel_init: ``None`` for PyTorch's default init, else a Flax initializer.
      dtype: compute dtype (parameters stay float32).
    """

    features: int
    use_bias: bool = False
    kernel_init: Any = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        # PyTorch's fan_in for a transposed conv is weight.size(1) * k * k = out * 9.
        default = torch_default_init(self.features * 9)
        init = default if self.kernel_init is None else self.kernel_init
        w = self.param("kernel", init, (3, 3, x.shape[-1], self.features))
        y = conv_transpose_subpixel(x.astype(self.dtype), w.astype(self.dtype))
        if self.use_bias:
            y = y + self.param("bias", default, (self.features,)).astype(self.dtype)
        return y


def repeat_blocks(
    parent: nn.Module,
    block: type[nn.Module],
    kwargs: dict,
    num: int,
    x,
    *args,
    prefix: str,
    remat: bool = False,
    scan: bool = False,
):
    """``x = block(x, *args)`` for ``num`` identical blocks named ``{prefix}0`` … .

    With ``scan`` the blocks run as one ``lax.scan`` over their parameters stacked on a
    new axis, so the program holds one block instead of ``num`` (scan-over-layers, the
    usual remedy for long compiles on accelerators); the parameters keep their
    per-block names, so checkpoints, converters and ``scan`` off read the same
    variables. The stacking copies the trunk's parameters once per call. On XLA:CPU the
    scanned train step measured *slower* to compile (README, "Compilation cache").
    ``remat`` recomputes each block's activations in the backward pass either way.
    """
    if not scan or parent.is_initializing():  # init creates the per-block params
        cls = nn.remat(block) if remat else block
        for i in range(num):
            x = cls(**kwargs, name=f"{prefix}{i}")(x, *args)
        return x
    params = parent.variables["params"]
    stacked = jax.tree.map(lambda *p: jnp.stack(p), *[params[f"{prefix}{i}"] for i in range(num)])
    unbound = block(**kwargs, parent=None)

    def body(h, p):
        return unbound.apply({"params": p}, h, *args), None

    x, _ = jax.lax.scan(jax.checkpoint(body) if remat else body, x, stacked)
    return x
