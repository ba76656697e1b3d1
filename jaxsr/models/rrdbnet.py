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

from jaxsr.models.layers import Conv, leaky_relu, repeat_blocks, upsample_nearest
from jaxsr.ops.pixel_shuffle import pixel_unshuffle

CONNECTIVITY = ("dense", "sparse", "chain")


def block_inputs(feats: list, connectivity: str) -> list:
    """Which earlier outputs the next conv of a residual block reads (``feats[0]`` is
    the block input): all of them (``dense``, ESRGAN's RDB), the block input and the
    previous output (``sparse``, jaxsr's reading of SPSAGAN's RRSB, spec §5.2), or the
    previous output only (``chain``)."""
    if connectivity == "dense":
        return feats
    if connectivity == "sparse":
        return feats[:1] + feats[1:][-1:]
    if connectivity == "chain":
        return feats[-1:]
    raise ValueError(f"Unknown connectivity {connectivity!r}; choose one of {CONNECTIVITY}.")


class ResidualDenseBlock(nn.Module):
    """Five 3×3 convs; output ``0.2 * conv5 + x``. ``connectivity='dense'`` is ESRGAN's
    RDB (each conv reads the block input and every earlier output); ``'sparse'`` and
    ``'chain'`` prune those skips (:func:`block_inputs`) for SPSAGAN's RRSB."""

    num_feat: int = 64
    num_grow_ch: int = 32
    dtype: Any = jnp.float32
    connectivity: str = "dense"

    @nn.compact
    def __call__(self, x):
        feats = [x]
        for j in range(1, 5):
            conv = Conv(self.num_grow_ch, init_scale=0.1, dtype=self.dtype, name=f"conv{j}")
            inputs = block_inputs(feats, self.connectivity)
            feats.append(leaky_relu(conv(jnp.concatenate(inputs, axis=-1))))
        x5 = Conv(self.num_feat, init_scale=0.1, dtype=self.dtype, name="conv5")(
            jnp.concatenate(block_inputs(feats, self.connectivity), axis=-1)
        )
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: three RDBs and a scaled skip (β = 0.2); with
    ``connectivity='sparse'`` the residual-in-residual *sparse* block (RRSB)."""

    num_feat: int = 64
    num_grow_ch: int = 32
    dtype: Any = jnp.float32
    connectivity: str = "dense"

    @nn.compact
    def __call__(self, x):
        out = x
        for r in range(1, 4):
            out = ResidualDenseBlock(
                self.num_feat, self.num_grow_ch, self.dtype, self.connectivity, name=f"rdb{r}"
            )(out)
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
      scan_blocks: run the trunk as a ``lax.scan`` over the RRDBs (one block traced;
        the same parameters and result, see :func:`~jaxsr.models.layers.repeat_blocks`).
    """

    scale: int = 4
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    num_in_ch: int = 3
    num_out_ch: int = 3
    dtype: Any = jnp.float32
    remat: bool = False
    scan_blocks: bool = False

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this: the pixel-unshuffle of ×2 / ×1."""
        return 4 // self.scale if self.scale in (1, 2) else 1

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
        body = repeat_blocks(
            self,
            RRDB,
            dict(num_feat=self.num_feat, num_grow_ch=self.num_grow_ch, dtype=self.dtype),
            self.num_block,
            feat,
            prefix="body_",
            remat=self.remat,
            scan=self.scan_blocks,
        )
        feat = feat + conv(self.num_feat, "conv_body")(body)
        feat = leaky_relu(conv(self.num_feat, "conv_up1")(upsample_nearest(feat)))
        feat = leaky_relu(conv(self.num_feat, "conv_up2")(upsample_nearest(feat)))
        out = conv(self.num_out_ch, "conv_last")(leaky_relu(conv(self.num_feat, "conv_hr")(feat)))
        return out.astype(jnp.float32)
