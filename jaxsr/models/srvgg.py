"""SRVGGNetCompact, Real-ESRGAN's compact generator.

Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure
Synthetic Data", ICCVW 2021; the network of the later releases
``realesr-animevideov3`` (16 convs) and ``realesr-general-x4v3`` (32 convs), official
``realesrgan/archs/srvgg_arch.py``: a plain stack of 3×3 convs with PReLU at the LR
size, one conv to ``3·s²`` channels, a pixel shuffle, and the nearest-upsampled input
added — no skip inside, so it runs fast on any backend.

Parameter count (``num_feat=64``, ×4): 16 convs 621,424 (``realesr-animevideov3``),
32 convs 1,213,296 (``realesr-general-x4v3``).

Parameters are named after the official ``nn.ModuleList`` ``body``: ``body_0`` the
first conv, ``body_{2i+1}`` the PReLU after conv ``body_{2i}`` (its ``weight``, one
slope per channel), ``body_{2·num_conv+2}`` the last conv — a ``.pth`` key maps to a
Flax path by replacing ``.`` with ``_`` once.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models.layers import Conv, upsample_nearest
from jaxsr.ops.imresize import keys_cubic_resize
from jaxsr.ops.pixel_shuffle import pixel_shuffle

ACTIVATIONS = ("prelu", "relu", "leakyrelu")


class PReLU(nn.Module):
    """``nn.PReLU(num_parameters=C)``: one learned slope per channel, initialised 0.25."""

    @nn.compact
    def __call__(self, x):
        slope = self.param("weight", nn.initializers.constant(0.25), (x.shape[-1],))
        # relu(x) - a·relu(-x) rather than a select: the same values, and exported to ONNX
        # as Relu ops, which ONNX Runtime fuses into the convs (no Where, no casts).
        return jax.nn.relu(x) - slope.astype(x.dtype) * jax.nn.relu(-x)


class SRVGGNetCompact(nn.Module):
    """Input ``(N, H, W, num_in_ch)`` in [0, 1] → ``(N, sH, sW, num_out_ch)``.

    Attributes:
      num_in_ch, num_out_ch: image channels.
      num_feat: channels of every hidden conv.
      num_conv: hidden convs after the first.
      upscale: the scale ``s``.
      act_type: ``prelu`` (the releases), ``relu`` or ``leakyrelu`` (slope 0.1).
      final_scale: 0, or a scale below ``upscale`` that the output is resized to with
        ncnn's bicubic (:func:`jaxsr.ops.imresize.keys_cubic_resize`): the ×2 and ×3
        ``realesr-animevideov3`` releases are the ×4 network followed by that resize.
      dtype: compute dtype (parameters stay float32).
    """

    num_in_ch: int = 3
    num_out_ch: int = 3
    num_feat: int = 64
    num_conv: int = 16
    upscale: int = 4
    act_type: str = "prelu"
    final_scale: int = 0
    dtype: Any = jnp.float32

    @property
    def scale(self) -> int:
        return self.final_scale or self.upscale

    def _act(self, index: int, x):
        if self.act_type == "prelu":
            return PReLU(name=f"body_{index}")(x)
        if self.act_type == "relu":
            return nn.relu(x)
        if self.act_type == "leakyrelu":
            return nn.leaky_relu(x, 0.1)
        raise ValueError(f"Unknown act_type {self.act_type!r}; choose one of {ACTIVATIONS}.")

    @nn.compact
    def __call__(self, x):
        inp = x
        out = x.astype(self.dtype)
        for i in range(self.num_conv + 1):
            out = Conv(self.num_feat, dtype=self.dtype, name=f"body_{2 * i}")(out)
            out = self._act(2 * i + 1, out)
        s = self.upscale
        last = 2 * self.num_conv + 2
        out = Conv(self.num_out_ch * s * s, dtype=self.dtype, name=f"body_{last}")(out)
        out = pixel_shuffle(out, s).astype(jnp.float32)
        out = out + upsample_nearest(inp.astype(jnp.float32), s)
        if not self.final_scale:
            return out
        out = keys_cubic_resize(out, 1, self.final_scale, s)
        return keys_cubic_resize(out, 2, self.final_scale, s)
