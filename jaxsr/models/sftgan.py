"""SFTGAN: SR conditioned on segmentation probability maps by Spatial Feature Transform.

Wang, Yu, Dong, Loy, "Recovering Realistic Texture in Image Super-resolution by Deep
Spatial Feature Transform", CVPR 2018 (arXiv:1804.02815), Sec. 3, as the official
PyTorch test code (xinntao/SFTGAN ``pytorch_test/architectures.py``) and the old
BasicSR training code (``sft_arch.py``) build it (spec §5.3):

* ``CondNet`` (:func:`cond_net`) maps the HR-size K = 8 class probabilities (background, sky, water,
  grass, mountain, building, plant, animal) to 32 condition channels at LR size
  (a 4×4 stride-4 conv, three 1×1 convs, LeakyReLU 0.1, a 1×1 conv);
* each :class:`SFTLayer` turns the condition into a per-pixel ``scale`` and ``shift``
  and returns ``fea · (scale + 1) + shift``;
* the trunk is 16 :class:`ResBlockSFT` (SFT → conv → ReLU → SFT → conv, residual),
  one more SFT layer and a conv, with a long skip; the HR branch upsamples ×2 twice by
  conv + pixel shuffle + ReLU.

The official ×4 model (``SFTGAN_bicx4_noBN_OST_bg.pth``) has 1,833,763 parameters.
Module names follow the PyTorch attribute names (``sft_branch_{i}``, ``SFT_scale_conv0``,
``CondNet_{i}``, ``HR_branch_{i}``) with a Sequential's index joined by ``_``: a checkpoint
key maps to a Flax path by that one rule, and the recipe's ×5 learning rate for every
parameter whose name contains ``SFT`` or ``Cond`` selects the same tensors here.

:class:`ACDDiscriminator` is SFTGAN's auxiliary-classifier discriminator
(``ACD_VGG_BN_96``): a VGG-style conv stack with BatchNorm on 96×96 patches and two
heads, a GAN logit and an 8-way category classifier.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxsr.models.layers import Conv, leaky_relu
from jaxsr.ops.pixel_shuffle import pixel_shuffle


class SFTLayer(nn.Module):
    """``fea · (scale + 1) + shift`` with ``scale``/``shift`` = conv1×1(LReLU_0.1(conv1×1(cond))).

    Attributes: ``num_feat`` (output width), ``cond_ch`` (condition channels).
    """

    num_feat: int = 64
    cond_ch: int = 32
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, fea, cond):
        def branch(kind):
            hidden = Conv(self.cond_ch, 1, dtype=self.dtype, name=f"SFT_{kind}_conv0")(cond)
            return Conv(self.num_feat, 1, dtype=self.dtype, name=f"SFT_{kind}_conv1")(
                leaky_relu(hidden, 0.1)
            )

        return fea * (branch("scale") + 1) + branch("shift")


class ResBlockSFT(nn.Module):
    """SFT → conv3×3 → ReLU → SFT → conv3×3, added to the input (``ResBlock_SFT``)."""

    num_feat: int = 64
    cond_ch: int = 32
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, cond):
        sft = lambda name: SFTLayer(self.num_feat, self.cond_ch, self.dtype, name=name)  # noqa: E731
        conv = lambda name: Conv(self.num_feat, 3, dtype=self.dtype, name=name)  # noqa: E731
        fea = nn.relu(conv("conv0")(sft("sft0")(x, cond)))
        return x + conv("conv1")(sft("sft1")(fea, cond))


def cond_net(seg, scale: int, cond_ch: int, dtype, hidden: int = 128):
    """HR-size class probabilities ``(B, s·h, s·w, K)`` -> condition ``(B, h, w, cond_ch)``:
    a ``scale``×``scale`` stride-``scale`` conv to 128, three 1×1 convs, LReLU 0.1, a 1×1
    conv out. Called inside a compact module: its convs are the caller's
    ``CondNet_{0,2,4,6,8}`` (the official Sequential's indices)."""
    x = Conv(hidden, scale, scale, 0, dtype=dtype, name="CondNet_0")(seg)
    for i in (2, 4, 6):
        x = Conv(hidden, 1, dtype=dtype, name=f"CondNet_{i}")(leaky_relu(x, 0.1))
    return Conv(cond_ch, 1, dtype=dtype, name="CondNet_8")(leaky_relu(x, 0.1))


def hr_branch(fea, num_feat: int, scale: int, num_out_ch: int, dtype):
    """SFTGAN's upsampler: (conv → pixel shuffle ×2 → ReLU) per factor 2, conv → ReLU,
    conv to RGB. Called inside a compact module: convs ``HR_branch_{0,3,…}``."""
    idx = 0
    for _ in range(scale.bit_length() - 1):
        fea = Conv(num_feat * 4, 3, dtype=dtype, name=f"HR_branch_{idx}")(fea)
        fea = nn.relu(pixel_shuffle(fea, 2))
        idx += 3
    fea = nn.relu(Conv(num_feat, 3, dtype=dtype, name=f"HR_branch_{idx}")(fea))
    return Conv(num_out_ch, 3, dtype=dtype, name=f"HR_branch_{idx + 2}")(fea)


class SFTNet(nn.Module):
    """SFTGAN generator (``SFT_Net``). ``__call__(lq, seg)``: LR RGB in [0, 1] NHWC and
    the HR-size class probabilities ``(B, scale·h, scale·w, num_classes)``; returns the
    ``scale``× image, float32, unclamped.

    Attributes:
      scale: 2 or 4 (the released model: 4).
      num_feat / num_block: trunk width and ResBlockSFT count (64 / 16).
      num_classes: probability channels of the segmentation prior (8 OST classes).
      cond_ch: condition channels shared by every SFT layer (32).
      dtype / remat: compute dtype; rematerialise each ResBlockSFT in backprop.
    """

    scale: int = 4
    num_feat: int = 64
    num_block: int = 16
    num_classes: int = 8
    cond_ch: int = 32
    num_in_ch: int = 3
    num_out_ch: int = 3
    dtype: Any = jnp.float32
    remat: bool = False

    needs_prior = True  # takes the class probabilities as a second input

    @nn.compact
    def __call__(self, lq, seg):
        check_prior(lq, seg, self.scale, self.num_classes)
        cond = cond_net(seg, self.scale, self.cond_ch, self.dtype)
        fea = Conv(self.num_feat, 3, dtype=self.dtype, name="conv0")(lq)
        block = nn.remat(ResBlockSFT) if self.remat else ResBlockSFT
        res = fea
        for i in range(self.num_block):
            res = block(self.num_feat, self.cond_ch, self.dtype, name=f"sft_branch_{i}")(res, cond)
        n = self.num_block
        res = SFTLayer(self.num_feat, self.cond_ch, self.dtype, name=f"sft_branch_{n}")(res, cond)
        res = Conv(self.num_feat, 3, dtype=self.dtype, name=f"sft_branch_{n + 1}")(res)
        out = hr_branch(fea + res, self.num_feat, self.scale, self.num_out_ch, self.dtype)
        return out.astype(jnp.float32)


def check_prior(lq, seg, scale: int, num_classes: int) -> None:
    """A clear error when the probability maps do not match the LR input ×scale."""
    want = (lq.shape[0], lq.shape[1] * scale, lq.shape[2] * scale, num_classes)
    if tuple(seg.shape) != want:
        raise ValueError(
            f"The segmentation prior has shape {tuple(seg.shape)}, but an LR input of "
            f"{tuple(lq.shape)} at ×{scale} needs {want} (HR-size class probabilities, NHWC)."
        )


class ACDDiscriminator(nn.Module):
    """SFTGAN's auxiliary-classifier discriminator (``ACD_VGG_BN_96``).

    conv3×3 + LReLU 0.1, then (conv4×4 s2, BN, LReLU) and (conv3×3, BN, LReLU) pairs
    widening 64 → 512 while halving 96 → 6, flattened (PyTorch NCHW order); two heads
    of Linear → LReLU 0.1 → Linear: a GAN logit and ``num_classes`` category logits.
    Returns ``(gan (B, 1), cls (B, num_classes))``. 96×96 input with the defaults:
    10,813,717 parameters (BatchNorm statistics not counted).
    """

    num_feat: int = 64
    input_size: int = 96
    num_classes: int = 8
    hidden: int = 100
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = True):
        if x.shape[1] != self.input_size or x.shape[2] != self.input_size:
            raise ValueError(
                f"ACDDiscriminator expects {self.input_size}x{self.input_size} patches, got "
                f"{x.shape[1]}x{x.shape[2]}; set the HR patch size to match."
            )
        nf = self.num_feat

        def block(x, width, k, s, i):
            x = Conv(width, k, s, 1, dtype=self.dtype, name=f"feature_{i}")(x)
            bn = nn.BatchNorm(
                use_running_average=not train,
                momentum=0.9,
                epsilon=1e-5,
                dtype=self.dtype,
                name=f"feature_{i + 1}",
            )
            return leaky_relu(bn(x), 0.1)

        x = leaky_relu(Conv(nf, 3, dtype=self.dtype, name="feature_0")(x), 0.1)
        x = block(x, nf, 4, 2, 2)
        i = 5
        for width in (nf * 2, nf * 4, nf * 8):
            x = block(x, width, 3, 1, i)
            x = block(x, width, 4, 2, i + 3)
            i += 6
        x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)  # PyTorch's flatten order

        def head(name, out):
            h = leaky_relu(nn.Dense(self.hidden, dtype=self.dtype, name=f"{name}_0")(x), 0.1)
            return nn.Dense(out, dtype=self.dtype, name=f"{name}_2")(h).astype(jnp.float32)

        return head("gan", 1), head("cls", self.num_classes)
