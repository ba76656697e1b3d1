"""SPSA: segmentation-prior self-attention (SPSAGAN's attention layer).

Zhang, Zheng, Hu, "Segmentation-prior self-attention generative adversarial network
for super-resolution", arXiv 2003.03489 (2020). No code or weights were published;
this layer is jaxsr's **reconstruction** (spec ``MODELS.md`` §5.2/§5.4), every open
choice an attribute whose default is the spec's reading:

* feature attention as in SAGAN (Zhang et al. 2019): ``f, g`` are 1×1 convs to
  ``C/8`` channels, ``h`` a 1×1 conv to ``C``; ``β_fea[j, i] = softmax_i(f_i·g_j)``;
* segmentation attention from the class-probability map ``P`` (``K`` channels) at the
  feature resolution: ``β_seg[j, i] = softmax_i(p_i·p_j / τ)`` (``τ`` 1, or learned);
* combined as ``β = w ⊙ β_seg + (1 − w) ⊙ β_fea`` with ``w = |β_seg − β_fea|``
  (the method summary's weighting; both maps are row-stochastic, so ``w`` ∈ [0, 1]),
  renormalised over keys by default (``renormalize``), so each row of ``β`` sums to 1;
* ``y = γ · Σ_i β[j, i] h_i + x`` with ``γ`` initialised at 0 (SAGAN).

The attention is computed in blocks of query positions: a block needs the logits of
its queries against every key (``block × N``), never the whole ``N × N`` map, so a
128×128 LR feature map (N = 16,384: 1 GiB per map in fp32) trains on an accelerator.
Measured (XLA:CPU compile-time memory analysis, 1×128×128×64 map, K = 8): forward
201 MiB of temporaries with blocks of 1,024 queries, 3,076 MiB dense; the gradient
339 MiB blockwise (each block's β recomputed in the backward pass), 6,679 MiB when
the blocks' maps are stored.
Softmax and the combination act on one query row at a time, so the blocks give the
dense result exactly. Parameters: ``2·(C·C/8 + C/8) + C·C + C + 1`` (f, g, h and γ;
C = 64: 5,201, one more with a learned τ).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models.layers import Conv


def combine_attention(logits_fea, logits_seg, *, renormalize: bool, seg_weight=None):
    """``β`` from the two logit maps (``(..., queries, keys)``); either may be ``None``
    (that attention switched off, the paper's ablations). ``seg_weight``: ``None`` for
    the reconstruction's ``w = |β_seg − β_fea|``, or a fixed ``w`` in [0, 1]."""
    beta_fea = None if logits_fea is None else jax.nn.softmax(logits_fea, axis=-1)
    beta_seg = None if logits_seg is None else jax.nn.softmax(logits_seg, axis=-1)
    if beta_seg is None:
        return beta_fea
    if beta_fea is None:
        return beta_seg
    w = jnp.abs(beta_seg - beta_fea) if seg_weight is None else seg_weight
    beta = w * beta_seg + (1.0 - w) * beta_fea
    if renormalize:
        beta = beta / jnp.sum(beta, axis=-1, keepdims=True)
    return beta


class SPSA(nn.Module):
    """Segmentation-prior self-attention on ``x`` (NHWC) with class probabilities
    ``prob`` (``(B, H, W, K)``, same ``H, W``).

    Attributes:
      feature_attention / segmentation_attention: the two attention maps (ablations;
        at least one on).
      renormalize: divide the combined map by its row sums (default on). The elementwise
        mix alone is not row-stochastic: a row sums to ``1 + Σ_i |d_i|·d_i`` with
        ``d = β_seg − β_fea``; the method summary's "convex combination" argument
        presumes rows that sum to 1, so jaxsr restores them.
      seg_weight: ``None`` = ``w = |β_seg − β_fea|`` (the method summary's Eq. 5 as the
        spec reads it); a number = that fixed ``w`` (0: SAGAN, 1: segmentation only).
      learn_temperature: a learned ``τ`` (initialised at 1) for the segmentation logits.
      query_block: query positions per block (``0`` = all at once); the last block is
        padded when it does not divide the positions.
    """

    feature_attention: bool = True
    segmentation_attention: bool = True
    renormalize: bool = True
    seg_weight: float | None = None
    learn_temperature: bool = False
    query_block: int = 1024
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, prob=None):
        if not (self.feature_attention or self.segmentation_attention):
            raise ValueError("SPSA needs feature_attention or segmentation_attention on.")
        if self.segmentation_attention and prob is None:
            raise ValueError("segmentation_attention needs the class probabilities `prob`.")
        b, hgt, wid, c = x.shape
        n = hgt * wid
        h = Conv(c, 1, dtype=self.dtype, name="h")(x).reshape(b, n, c)
        if self.feature_attention:
            keys = Conv(max(c // 8, 1), 1, dtype=self.dtype, name="f")(x).reshape(b, n, -1)
            queries = Conv(max(c // 8, 1), 1, dtype=self.dtype, name="g")(x).reshape(b, n, -1)
        if self.segmentation_attention:
            p = prob.reshape(b, n, -1).astype(jnp.float32)
            if self.learn_temperature:
                p = p / jnp.sqrt(self.param("temperature", nn.initializers.ones, ()))
        gamma = self.param("gamma", nn.initializers.zeros, ())

        q_fea = queries if self.feature_attention else None
        q_seg = p if self.segmentation_attention else None
        if self.query_block:
            # Queries padded to a whole number of blocks (any image size); keys stay
            # exact, and the padded rows are dropped, so the result is the dense one.
            block = min(self.query_block, n)
            padded = -(-n // block) * block
            pad = lambda a: jnp.pad(a, ((0, 0), (0, padded - n), (0, 0)))  # noqa: E731
            q_fea = pad(q_fea) if self.feature_attention else None
            q_seg = pad(q_seg) if self.segmentation_attention else None

        def attend(start, size):
            """β rows and outputs of query positions ``start .. start + size`` (every
            query with ``size`` ``None``)."""

            def sl(a):
                return a if size is None else jax.lax.dynamic_slice_in_dim(a, start, size, 1)

            fea = seg = None
            if self.feature_attention:  # f32 logits: softmax over thousands of keys
                fea = jnp.einsum(
                    "bqd,bkd->bqk", sl(q_fea), keys, preferred_element_type=jnp.float32
                )
            if self.segmentation_attention:
                seg = jnp.einsum("bqd,bkd->bqk", sl(q_seg), p)
            beta = combine_attention(
                fea, seg, renormalize=self.renormalize, seg_weight=self.seg_weight
            )
            return beta, jnp.einsum("bqk,bkc->bqc", beta.astype(h.dtype), h)

        if self.query_block:
            starts = jnp.arange(0, padded, block)
            # Rematerialised per block: the backward pass recomputes a block's β instead
            # of storing every block's (which would be the dense map again, N × N).
            block_out = jax.checkpoint(lambda s: attend(s, block)[1])
            out = jax.lax.map(block_out, starts)  # (blocks, b, block, c)
            out = jnp.moveaxis(out, 0, 1).reshape(b, padded, c)[:, :n]
        else:  # one block, no loop: also for symbolic sizes (an exported graph)
            out = attend(0, None)[1]
        if self.is_mutable_collection("intermediates"):
            # What four query pixels (the centres of the image's quadrants) attend to,
            # for the attention-map images logged at evaluation; cheap (4 rows of β).
            rows = [
                (hgt // 4 + hgt // 2 * i) * wid + wid // 4 + wid // 2 * j
                for i in (0, 1)
                for j in (0, 1)
            ]
            probes = jnp.stack([attend(r, 1)[0][:, 0] for r in rows], 1)
            self.sow("intermediates", "attention", probes.reshape(b, 4, hgt, wid))
        out = out.reshape(b, hgt, wid, c)
        return x + gamma.astype(out.dtype) * out.astype(x.dtype)
