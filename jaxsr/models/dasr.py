"""DASR: the degradation encoder and the degradation-aware SR network.

Wang et al., "Unsupervised Degradation Representation Learning for Blind
Super-Resolution", CVPR 2021 (arXiv:2104.00416), Sec. 3; official code
``model/blindsr.py`` (spec §2.2–2.3).

* :class:`DegradationEncoder` — six 3×3 conv + BatchNorm + LeakyReLU(0.1) stages
  (64, 64, 128↓2, 128, 256↓2, 256), global average pooling to the 256-d degradation
  embedding, and a 2-layer MLP head used only by the contrastive loss.
  1,147,200 parameters without the head, 1,278,784 with it.
* :class:`DASR` — the SR network: 5 degradation-aware groups (DAG) of 5 blocks (DAB)
  whose DA convolutions predict a per-sample depthwise 3×3 kernel and a channel
  attention from the embedding, and an EDSR upsampler. ×4: 4,690,523 parameters.
* :class:`BlindSR` — encoder + SR network for inference: ``apply(variables, lq)``
  takes the LR image in [0, 1] like every jaxsr model; inside, values are on DASR's
  0–255 scale and the encoder's BatchNorm uses its running statistics.

The whole model works on pixel values 0–255 (``rgb_range=255``); ``DASR`` subtracts
the DIV2K mean itself, the encoder sees raw values.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models.layers import Conv, leaky_relu, repeat_blocks, torch_default_init
from jaxsr.ops.pixel_shuffle import pixel_shuffle

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)  # EDSR/DASR MeanShift, times rgb_range = 255


def lrelu(x):
    """DASR's LeakyReLU(0.1)."""
    return leaky_relu(x, 0.1)


class Linear(nn.Module):
    """``nn.Linear`` with PyTorch's default init (DASR uses it without bias)."""

    features: int
    use_bias: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        init = torch_default_init(x.shape[-1])
        kernel = self.param("kernel", init, (x.shape[-1], self.features))
        y = jnp.dot(x.astype(self.dtype), kernel.astype(self.dtype))
        if self.use_bias:
            y = y + self.param("bias", init, (self.features,)).astype(self.dtype)
        return y


class DegradationEncoder(nn.Module):
    """The degradation encoder E (encoder_q / encoder_k of MoCo).

    Returns ``(embedding, projection)``: the pooled feature (``fea``, given to the SR
    network) and the MLP output (``out``, for InfoNCE). ``train=True`` normalises with
    batch statistics and updates the running ones (both encoders run in train mode
    during training, as the official code).
    """

    widths: tuple[int, ...] = (64, 64, 128, 128, 256, 256)
    strides: tuple[int, ...] = (1, 1, 2, 1, 2, 1)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        for i, (width, stride) in enumerate(zip(self.widths, self.strides, strict=True)):
            x = Conv(width, 3, strides=stride, dtype=self.dtype, name=f"conv{i}")(x)
            x = nn.BatchNorm(
                use_running_average=not train,
                momentum=0.9,  # PyTorch momentum 0.1
                epsilon=1e-5,
                dtype=self.dtype,
                name=f"bn{i}",
            )(x)
            x = lrelu(x)
        fea = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
        dim = self.widths[-1]
        out = Linear(dim, use_bias=True, dtype=self.dtype, name="mlp0")(fea)
        out = Linear(dim, use_bias=True, dtype=self.dtype, name="mlp1")(lrelu(out))
        return fea, out.astype(jnp.float32)


class DAConv(nn.Module):
    """Degradation-aware convolution: ``lrelu(dwconv_v(x)) → 1×1 conv``, plus ``x · CA(v)``.

    The depthwise 3×3 kernel of every channel is predicted from the degradation
    representation ``v`` per sample (branch 1); a channel attention computed from
    ``v`` rescales the input (branch 2, the official ``CA_layer``).
    """

    features: int = 64
    reduction: int = 8
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, v):
        c = self.features
        k = Linear(c, dtype=self.dtype, name="kernel_fc1")(v)
        k = Linear(c * 9, dtype=self.dtype, name="kernel_fc2")(lrelu(k))
        # Official layout: channel c uses elements [9c, 9c + 9) as a row-major 3×3.
        k = k.reshape(k.shape[0], c, 3, 3).astype(self.dtype)
        # A per-sample depthwise 3×3 as nine shifted multiply-adds: the same maths as
        # the official grouped conv (groups = batch × channels), cheap on any backend.
        h, w = x.shape[1:3]
        xp = jnp.pad(x.astype(self.dtype), ((0, 0), (1, 1), (1, 1), (0, 0)))
        out = sum(
            xp[:, i : i + h, j : j + w, :] * k[:, None, None, :, i, j]
            for i in range(3)
            for j in range(3)
        )
        out = Conv(c, 1, dtype=self.dtype, name="conv")(lrelu(out))
        att = Linear(c // self.reduction, dtype=self.dtype, name="ca_down")(v)
        att = jax.nn.sigmoid(Linear(c, dtype=self.dtype, name="ca_up")(lrelu(att)))
        return out + x * att[:, None, None, :].astype(x.dtype)


class DAB(nn.Module):
    """Degradation-aware block: DA conv, conv, DA conv, conv, residual."""

    features: int = 64
    reduction: int = 8
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, v):
        c, r, dt = self.features, self.reduction, self.dtype
        out = lrelu(DAConv(c, r, dt, name="da_conv1")(x, v))
        out = lrelu(Conv(c, 3, dtype=dt, name="conv1")(out))
        out = lrelu(DAConv(c, r, dt, name="da_conv2")(out, v))
        return Conv(c, 3, dtype=dt, name="conv2")(out) + x


class DAG(nn.Module):
    """Degradation-aware group: ``n_blocks`` DABs, a 3×3 conv and a residual."""

    features: int = 64
    n_blocks: int = 5
    reduction: int = 8
    dtype: Any = jnp.float32
    remat: bool = False
    scan_blocks: bool = False

    @nn.compact
    def __call__(self, x, v):
        kwargs = dict(features=self.features, reduction=self.reduction, dtype=self.dtype)
        res = repeat_blocks(
            self,
            DAB,
            kwargs,
            self.n_blocks,
            x,
            v,
            prefix="dab",
            remat=self.remat,
            scan=self.scan_blocks,
        )
        return Conv(self.features, 3, dtype=self.dtype, name="conv")(res) + x


class DASR(nn.Module):
    """The DASR super-resolution network ``G(lr, embedding)`` on the 0–255 scale.

    Attributes:
      scale: 2, 3 or 4 (EDSR upsampler).
      n_feats, n_groups, n_blocks, reduction: 64, 5, 5, 8 in the paper.
      dtype: compute dtype; remat: rematerialise each DAB in the backward pass.
      scan_blocks: run the groups, and the blocks in each, as ``lax.scan`` loops (one
        DAB traced; the same parameters and result, see
        :func:`~jaxsr.models.layers.repeat_blocks`).
    """

    scale: int = 4
    n_feats: int = 64
    n_groups: int = 5
    n_blocks: int = 5
    reduction: int = 8
    dtype: Any = jnp.float32
    remat: bool = False
    scan_blocks: bool = False

    @nn.compact
    def __call__(self, x, embedding):
        c, dt = self.n_feats, self.dtype
        mean = 255.0 * jnp.asarray(DIV2K_MEAN, jnp.float32)
        v = lrelu(Linear(c, dtype=dt, name="compress")(embedding))
        x = Conv(c, 3, dtype=dt, name="head")(x - mean)
        res = x
        group = dict(
            features=c,
            n_blocks=self.n_blocks,
            reduction=self.reduction,
            dtype=dt,
            remat=self.remat,
            scan_blocks=self.scan_blocks,
        )
        res = repeat_blocks(
            self, DAG, group, self.n_groups, res, v, prefix="dag", scan=self.scan_blocks
        )
        res = Conv(c, 3, dtype=dt, name="body_conv")(res) + x
        if self.scale in (2, 4):
            for i in range(int(math.log2(self.scale))):
                res = pixel_shuffle(Conv(4 * c, 3, dtype=dt, name=f"upsample{i}")(res), 2)
        elif self.scale == 3:
            res = pixel_shuffle(Conv(9 * c, 3, dtype=dt, name="upsample0")(res), 3)
        else:
            raise ValueError(f"DASR supports ×2, ×3 and ×4, not ×{self.scale}.")
        return Conv(3, 3, dtype=dt, name="tail")(res).astype(jnp.float32) + mean


class BlindSR(nn.Module):
    """Inference model: ``lq`` in [0, 1] -> SR in [0, 1] (unclamped), encoder in eval mode.

    Variables: ``{'params': {'E': ..., 'G': ...}, 'batch_stats': {'E': ...}}``.
    """

    scale: int = 4
    n_feats: int = 64
    n_groups: int = 5
    n_blocks: int = 5
    reduction: int = 8
    encoder_widths: tuple[int, ...] = (64, 64, 128, 128, 256, 256)
    dtype: Any = jnp.float32
    remat: bool = False
    scan_blocks: bool = False

    def setup(self):
        self.E, self.G = parts(self)

    def __call__(self, lq):
        x = lq * 255.0
        fea, _ = self.E(x, train=False)
        return self.G(x, fea) / 255.0

    def embed(self, lq):
        """The degradation embedding of ``lq`` in [0, 1] (eval-mode BatchNorm)."""
        return self.E(lq * 255.0, train=False)[0]


def parts(model: BlindSR) -> tuple[DegradationEncoder, DASR]:
    """The (unbound) encoder and SR network a ``BlindSR`` is made of; training applies
    them separately (two encoders, two BatchNorm modes, per-network optimizers)."""
    m = model
    encoder = DegradationEncoder(tuple(m.encoder_widths), dtype=m.dtype)
    generator = DASR(
        m.scale, m.n_feats, m.n_groups, m.n_blocks, m.reduction, m.dtype, m.remat, m.scan_blocks
    )
    return encoder, generator
