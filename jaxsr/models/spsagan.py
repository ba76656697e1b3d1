"""SPSAGAN's generator: ESRGAN's RRDBNet with a sparse trunk, SFT conditioning and SPSA.

Zhang, Zheng, Hu, "Segmentation-prior self-attention generative adversarial network
for super-resolution", arXiv 2003.03489 (2020). No code or weights were published, so
this is jaxsr's **reconstruction** from the abstract and the method summary (spec
§5.2/§5.4); every open choice is an attribute whose default is the spec's reading:

* the ESRGAN generator (``conv_first``, a trunk of residual-in-residual blocks,
  ``conv_body``, nearest ×2 upsampling twice, ``conv_hr``, ``conv_last``; the names
  of :class:`~jaxsr.models.rrdbnet.RRDBNet`, so a step-1 RRDBNet's weights load here);
* the trunk's blocks are RRSBs (``connectivity='sparse'``: each conv reads the block
  input and the previous output instead of every earlier output); ``'dense'`` gives
  RRDBs back (the paper's ablation "without RRSB");
* SFTGAN-style conditioning (``sft``): SFTGAN's CondNet turns the HR-size class
  probabilities into LR-size conditions and an SFT layer modulates the output of each
  trunk block (``SFT_{i}``); the summary says only "SFTGAN-style conditioning", so the
  place (after each block) is the reconstruction's;
* an :class:`~jaxsr.models.spsa.SPSA` layer after trunk block ``spsa_after`` (default:
  the last), whose segmentation attention reads the probabilities average-pooled to
  the LR grid. ``feature_attention`` / ``segmentation_attention`` switch its two maps
  (the paper's ablation table); ``spsa=False`` removes it (step 1 of the recipe trains
  the network without it).

Parameter names containing ``SFT``, ``Cond`` or ``SPSA`` are the conditioning and
attention modules the recipe trains at 5× the learning rate.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxsr.models.layers import Conv, leaky_relu, upsample_nearest
from jaxsr.models.rrdbnet import RRDB
from jaxsr.models.sftgan import SFTLayer, check_prior, cond_net
from jaxsr.models.spsa import SPSA


def pool_prior(seg, scale: int):
    """HR-size probabilities -> the LR grid by ``scale``×``scale`` averages (still sums to 1)."""
    b, h, w, k = seg.shape
    return seg.reshape(b, h // scale, scale, w // scale, scale, k).mean((2, 4))


class SPSAGenerator(nn.Module):
    """``__call__(lq, seg=None)``: LR RGB in [0, 1] NHWC and (with ``sft`` or segmentation
    attention) the HR-size class probabilities; returns the ×4 image, float32.

    Attributes:
      num_feat / num_block / num_grow_ch: ESRGAN's nf / nb / gc.
      connectivity: trunk blocks, ``'sparse'`` (RRSB) | ``'dense'`` (RRDB) | ``'chain'``.
      num_classes / cond_ch: prior channels and SFT condition channels.
      sft: SFT conditioning after every trunk block.
      spsa: the attention layer; ``spsa_after`` the trunk block it follows (-1 = last).
      feature_attention / segmentation_attention / renormalize / query_block: the SPSA
        layer's options (``jaxsr.models.spsa``); ``seg_weight`` < 0 is its adaptive
        ``w = |β_seg − β_fea|``, a value in [0, 1] a fixed ``w``.
      dtype / remat: compute dtype; rematerialise each trunk block in backprop.
    """

    scale: int = 4
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    connectivity: str = "sparse"
    num_classes: int = 8
    cond_ch: int = 32
    sft: bool = True
    spsa: bool = True
    spsa_after: int = -1
    feature_attention: bool = True
    segmentation_attention: bool = True
    seg_weight: float = -1.0
    renormalize: bool = True
    query_block: int = 1024
    dtype: Any = jnp.float32
    remat: bool = False

    @property
    def needs_prior(self) -> bool:
        return self.sft or (self.spsa and self.segmentation_attention)

    @nn.compact
    def __call__(self, lq, seg=None):
        if self.scale != 4:
            raise ValueError(f"SPSAGenerator is a ×4 network (ESRGAN's), got scale {self.scale}.")
        if self.needs_prior:
            if seg is None:
                raise ValueError("This SPSAGAN generator needs the class probabilities `seg`.")
            check_prior(lq, seg, self.scale, self.num_classes)
        conv = lambda n, name: Conv(n, dtype=self.dtype, name=name)  # noqa: E731
        feat = conv(self.num_feat, "conv_first")(lq)
        cond = cond_net(seg, self.scale, self.cond_ch, self.dtype) if self.sft else None
        block = nn.remat(RRDB) if self.remat else RRDB
        where = self.spsa_after % self.num_block
        body = feat
        for i in range(self.num_block):
            body = block(
                self.num_feat, self.num_grow_ch, self.dtype, self.connectivity, name=f"body_{i}"
            )(body)
            if self.sft:
                body = SFTLayer(self.num_feat, self.cond_ch, self.dtype, name=f"SFT_{i}")(
                    body, cond
                )
            if self.spsa and i == where:
                prob = pool_prior(seg, self.scale) if self.segmentation_attention else None
                body = SPSA(
                    feature_attention=self.feature_attention,
                    segmentation_attention=self.segmentation_attention,
                    renormalize=self.renormalize,
                    seg_weight=None if self.seg_weight < 0 else self.seg_weight,
                    query_block=self.query_block,
                    dtype=self.dtype,
                    name="SPSA",
                )(body, prob)
        feat = feat + conv(self.num_feat, "conv_body")(body)
        feat = leaky_relu(conv(self.num_feat, "conv_up1")(upsample_nearest(feat)))
        feat = leaky_relu(conv(self.num_feat, "conv_up2")(upsample_nearest(feat)))
        out = conv(3, "conv_last")(leaky_relu(conv(self.num_feat, "conv_hr")(feat)))
        return out.astype(jnp.float32)
