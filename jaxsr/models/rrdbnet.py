"""RRDBNet, the ESRGAN generator.

Wang et al., "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks",
ECCV Workshops 2018 (arXiv:1809.00219), Sec. 3.1: a trunk of Residual-in-Residual
Dense Blocks without batch norm, residual scaling β = 0.2, nearest-neighbour ×2
upsampling twice. The default (nf=64, nb=23, gc=32, ×4) has 16,697,987 parameters,
as the released ``RRDB_ESRGAN_x4.pth``.

Parameter names follow BasicSR's ``RRDBNet`` (``conv_first``, ``body_{i}/rdb{r}/
conv{j}``, ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``) so
that a ``.pth`` key maps to a Flax path by replacing ``.`` with ``/``.

For scale 2 and 1 the input is pixel-unshuffled first (Real-ESRGAN's ×2 / ×1 models),
so the trunk always runs at 1/4 of the output resolution.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxsr.models.layers import Conv, leaky_relu, upsample_nearest
from jaxsr.ops.pixel_shuffle import pixel_unshuffle


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3×3 convs; output ``0.2 * conv5 + x`` (RDB in the paper)."""

    num_feat: int = 64
    num_grow_ch: int = 32
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        feats = [x]
        for j in range(1, 5):
            conv = Conv(self.num_grow_ch, init_scale=0.1, dtype=self.dtype, name=f"conv{j}")
            feats.append(leaky_relu(conv(jnp.concatenate(feats, axis=-1))))
        x5 = Conv(self.num_feat, init_scale=0.1, dtype=self.dtype, name="conv5")(
            jnp.concatenate(feats, axis=-1)
        )
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: three RDBs and a scaled skip (β = 0.2)."""

    num_feat: int = 64
    num_grow_ch: int = 32
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        out = x
        for r in range(1, 4):
            out = ResidualDenseBlock(self.num_feat, self.num_grow_ch, self.dtype, name=f"rdb{r}")(
                out
            )
        return out * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN generator. Input NHWC RGB in [0, 1]; output ``scale``× larger, float32, unclamped.

    Attributes:
      scale: 1, 2 or 4.
      num_feat: trunk width (nf).
      num_block: number of RRDBs (nb).
      num_grow_ch: dense growth channels (gc).
      num_in_ch / num_out_ch: image channels.
      dtype: compute dtype (``bfloat16`` for mixed precision; params stay float32).
      remat: rematerialise each RRDB in the backward pass (saves activation memory).
    """

    scale: int = 4
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    num_in_ch: int = 3
    num_out_ch: int = 3
    dtype: Any = jnp.float32
    remat: bool = False

    @nn.compact
    def __call__(self, x):
        if self.scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet supports scale 1, 2 or 4, got {self.scale}.")
        if self.scale == 2:
            x = pixel_unshuffle(x, 2)
        elif self.scale == 1:
            x = pixel_unshuffle(x, 4)
        conv = lambda n, name: Conv(n, dtype=self.dtype, name=name)  # noqa: E731
        feat = conv(self.num_feat, "conv_first")(x)
        block = nn.remat(RRDB) if self.remat else RRDB
        body = feat
        for i in range(self.num_block):
            body = block(self.num_feat, self.num_grow_ch, self.dtype, name=f"body_{i}")(body)
        feat = feat + conv(self.num_feat, "conv_body")(body)
        feat = leaky_relu(conv(self.num_feat, "conv_up1")(upsample_nearest(feat)))
        feat = leaky_relu(conv(self.num_feat, "conv_up2")(upsample_nearest(feat)))
        out = conv(self.num_out_ch, "conv_last")(leaky_relu(conv(self.num_feat, "conv_hr")(feat)))
        return out.astype(jnp.float32)
