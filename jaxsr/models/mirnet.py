"""MIRNet: multi-scale residual blocks for real image restoration.

Zamir et al., "Learning Enriched Features for Real Image Restoration and Enhancement",
ECCV 2020 (arXiv:2003.06792); official code ``networks/MIRNet_model.py`` (spec §3).

A global residual network of 3 recursive residual groups (RRG) of 2 multi-scale
residual blocks (MRB). Each MRB keeps three streams at full, 1/2 and 1/4 resolution
(64, 128, 256 channels), processes them with dual attention units (DAU: spatial +
channel attention), exchanges information between them with residual down/up
sampling and fuses them with selective kernel feature fusion (SKFF).

Weight sharing is reproduced exactly as the official code has it (spec §3.6): one DAU
per stream serves both columns of an MRB, a single PReLU slope is shared by *every*
DAU of the network (a default-argument module in the official code), and the level-0
SKFF and the ×2 down-samplers are used twice per MRB. The default model therefore has
31,787,419 parameters (42.2 M if the sharing were missed), as the released weights.

Input and output are RGB in [0, 1], same size (denoising, enhancement, and SR of an
image already bicubic-upsampled to the target size). Sizes that are not multiples of
4 are reflection-padded and cropped back.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models.layers import Conv, ConvTranspose, upsample_bilinear2x


def prelu(x, alpha):
    return jnp.where(x >= 0, x, alpha * x)


class PReLU(nn.Module):
    """``nn.PReLU()``: one learnable slope, initialised to 0.25."""

    @nn.compact
    def __call__(self, x):
        alpha = self.param("weight", nn.initializers.constant(0.25), (1,))
        return prelu(x, alpha[0].astype(x.dtype))


def antialiased_downsample(x):
    """Reflection pad 1, fixed binomial ``[1,2,1]ᵀ[1,2,1]/16`` blur, stride 2 (per channel)."""
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    h, w = x.shape[1] // 2, x.shape[2] // 2  # even sizes (MIRNet pads inputs to ×4)

    def taps(y, axis, n):
        parts = [jax.lax.slice_in_dim(y, o, o + 2 * n - 1, 2, axis) for o in range(3)]
        return (parts[0] + 2.0 * parts[1] + parts[2]) * 0.25

    return taps(taps(xp, 1, h), 2, w)


class DAU(nn.Module):
    """Dual attention unit: conv-PReLU-conv, then spatial and channel attention, fused by
    a 1×1 conv, plus the input. ``alpha`` is the network-wide shared PReLU slope."""

    features: int
    reduction: int = 8
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, alpha):
        c, dt = self.features, self.dtype
        res = Conv(c, 3, use_bias=False, dtype=dt, name="conv0")(x)
        res = Conv(c, 3, use_bias=False, dtype=dt, name="conv2")(prelu(res, alpha))
        pooled = jnp.concatenate(
            [jnp.max(res, axis=-1, keepdims=True), jnp.mean(res, axis=-1, keepdims=True)], -1
        )
        sa = res * jax.nn.sigmoid(Conv(1, 5, use_bias=False, dtype=dt, name="sa")(pooled))
        a = jnp.mean(res, axis=(1, 2), keepdims=True)
        a = nn.relu(Conv(c // self.reduction, 1, use_bias=False, dtype=dt, name="ca_down")(a))
        ca = res * jax.nn.sigmoid(Conv(c, 1, use_bias=False, dtype=dt, name="ca_up")(a))
        fused = Conv(c, 1, use_bias=False, dtype=dt, name="conv1x1")
        return fused(jnp.concatenate([sa, ca], -1)) + x


class SKFF(nn.Module):
    """Selective kernel feature fusion of same-shape streams: attention weights per
    channel from the pooled sum, softmax-normalised across the streams."""

    features: int
    height: int = 3
    reduction: int = 8
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, streams):
        c, dt = self.features, self.dtype
        d = max(c // self.reduction, 4)
        s = jnp.mean(sum(streams), axis=(1, 2), keepdims=True)
        z = PReLU(name="prelu")(Conv(d, 1, use_bias=False, dtype=dt, name="conv_du")(s))
        att = jnp.stack(
            [Conv(c, 1, use_bias=False, dtype=dt, name=f"fc{k}")(z) for k in range(self.height)]
        )
        att = jax.nn.softmax(att.astype(jnp.float32), axis=0).astype(streams[0].dtype)
        # lax.index_in_dim, a slice: att[k] would be a gather once the batch is symbolic.
        return sum(
            jax.lax.index_in_dim(att, k, keepdims=False) * streams[k] for k in range(self.height)
        )


class ResidualDownSample(nn.Module):
    """×1/2 resolution, ×2 channels: a conv path and an anti-aliased skip path."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        c, dt = self.features, self.dtype
        top = PReLU(name="prelu0")(Conv(c, 1, use_bias=False, dtype=dt, name="top0")(x))
        top = PReLU(name="prelu1")(Conv(c, 3, use_bias=False, dtype=dt, name="top2")(top))
        top = Conv(2 * c, 1, use_bias=False, dtype=dt, name="top5")(antialiased_downsample(top))
        bot = Conv(2 * c, 1, use_bias=False, dtype=dt, name="bot1")(antialiased_downsample(x))
        return top + bot


class ResidualUpSample(nn.Module):
    """×2 resolution, ×1/2 channels: transposed conv path and a bilinear skip path."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        c, dt = self.features, self.dtype
        top = PReLU(name="prelu0")(Conv(c, 1, use_bias=False, dtype=dt, name="top0")(x))
        top = PReLU(name="prelu1")(ConvTranspose(c, dtype=dt, name="top2")(top))
        top = Conv(c // 2, 1, use_bias=False, dtype=dt, name="top4")(top)
        bot = Conv(c // 2, 1, use_bias=False, dtype=dt, name="bot1")(upsample_bilinear2x(x))
        return top + bot


class Resample(nn.Module):
    """``factor``× down (channels double per step) or up (channels halve) in ×2 steps."""

    features: int
    factor: int
    up: bool
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        c = self.features
        for i in range(self.factor.bit_length() - 1):
            stage = ResidualUpSample if self.up else ResidualDownSample
            x = stage(c, self.dtype, name=f"stage{i}")(x)
            c = c // 2 if self.up else c * 2
        return x


class MRB(nn.Module):
    """Multi-scale residual block (``MSRB`` in the code): 3 streams, 2 DAU columns."""

    features: int = 64
    height: int = 3
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, alpha):
        n, dt = self.features, self.dtype
        widths = [n * 2**j for j in range(self.height)]
        daus = [DAU(widths[j], dtype=dt, name=f"dau{j}") for j in range(self.height)]
        skffs = [
            SKFF(widths[j], self.height, dtype=dt, name=f"skff{j}") for j in range(self.height)
        ]
        resamplers = {}

        def resample(t, src: int, dst: int):
            """Bring stream ``src`` to level ``dst`` (the official ``select_up_down``)."""
            if src == dst:
                return t
            factor, up = 2 ** abs(dst - src), src > dst
            key = f"{'up' if up else 'down'}_{widths[src]}_{factor}"
            if key not in resamplers:
                resamplers[key] = Resample(widths[src], factor, up, dt, name=key)
            return resamplers[key](t)

        # Column 0: progressive downsampling.
        streams = []
        for j in range(self.height):
            streams.append(daus[j](x if j == 0 else resample(streams[-1], j - 1, j), alpha))
        # Column 1: every stream gathers all three, fuses them, and the *same* DAU again.
        fused = [
            skffs[j]([resample(streams[k], k, j) for k in range(self.height)])
            for j in range(self.height)
        ]
        streams = [daus[j](fused[j], alpha) for j in range(self.height)]
        # Aggregation at full resolution with separate upsamplers and SKFF_0 (reused).
        last = [streams[0]] + [
            Resample(widths[k], 2**k, True, dt, name=f"last_up_{k}")(streams[k])
            for k in range(1, self.height)
        ]
        out = skffs[0](last)
        return Conv(n, 3, use_bias=False, dtype=dt, name="conv_out")(out) + x


class MIRNet(nn.Module):
    """MIRNet for restoration at the input size; ``apply(variables, x)`` with x in [0, 1].

    Attributes:
      n_feat: width of the full-resolution stream (64).
      n_rrg, n_mrb: recursive residual groups and MRBs per group (3, 2).
      height: streams per MRB (3).
      scale: always 1 (same-size output), for the jaxsr model interface.
    """

    n_feat: int = 64
    n_rrg: int = 3
    n_mrb: int = 2
    height: int = 3
    scale: int = 1
    dtype: Any = jnp.float32
    remat: bool = False

    @property
    def size_multiple(self) -> int:
        """What an exported graph needs (in JAX, other sizes are padded to it first)."""
        return 2 ** (self.height - 1)

    @nn.compact
    def __call__(self, x):
        if self.scale != 1:
            raise ValueError("MIRNet restores at the input size; use scale=1.")
        if self.n_feat % 8:
            raise ValueError(f"MIRNet's attention reduces channels by 8: n_feat={self.n_feat}.")
        h, w = x.shape[1], x.shape[2]
        mult = 2 ** (self.height - 1)
        ph, pw = -h % mult, -w % mult
        if ph or pw:  # reflect where the image allows it, else repeat the edge
            mode = "reflect" if min(h, w) > max(ph, pw) else "edge"
            x = jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode)
        # One PReLU slope for every DAU of the network (official default-argument quirk).
        alpha = self.param("dau_prelu", nn.initializers.constant(0.25), (1,))[0]
        dt = self.dtype
        y = Conv(self.n_feat, 3, use_bias=False, dtype=dt, name="conv_in")(x)
        mrb = nn.remat(MRB) if self.remat else MRB
        for r in range(self.n_rrg):
            res = y
            for m in range(self.n_mrb):
                res = mrb(self.n_feat, self.height, dt, name=f"rrg{r}_mrb{m}")(res, alpha)
            y = Conv(self.n_feat, 3, use_bias=False, dtype=dt, name=f"rrg{r}_conv")(res) + y
        out = Conv(3, 3, use_bias=False, dtype=dt, name="conv_out")(y).astype(jnp.float32) + x
        return out[:, :h, :w]
