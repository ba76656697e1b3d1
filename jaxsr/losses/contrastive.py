"""InfoNCE against a queue of negatives (MoCo; He et al., CVPR 2020).

DASR (Sec. 3.1) learns its degradation representation with MoCo: a query embedding
``q`` and a positive key ``k`` come from two patches of the same image with the same
degradation; the negatives are the keys of earlier batches kept in a queue. The loss
is the cross-entropy of the positive among ``1 + K`` logits scaled by ``1/T``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    """``F.normalize(x, dim=-1)``: ``x / max(||x||, eps)``."""
    norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=-1, keepdims=True))
    return x / jnp.maximum(norm, eps)


def contrastive_logits(
    q: jax.Array, k: jax.Array, queue: jax.Array, temperature: float, hard=None
) -> jax.Array:
    """``[q·k, (q·hard,) q·queue] / T``, ``(N, 1 (+ 1) + K)``, for normalised queries
    ``q (N, D)``, positives ``k (N, D)``, negatives ``queue (K, D)`` and optionally one
    negative per query ``hard (N, D)``; the positive is column 0."""
    pos = jnp.sum(q * k, axis=-1, keepdims=True)
    neg = jnp.einsum("nd,kd->nk", q, queue, precision="highest")
    if hard is not None:
        neg = jnp.concatenate([jnp.sum(q * hard, axis=-1, keepdims=True), neg], axis=-1)
    return jnp.concatenate([pos, neg], axis=-1) / temperature


def info_nce(logits: jax.Array) -> jax.Array:
    """Mean cross-entropy with the positive in column 0 (MoCo's ``CrossEntropy(logits, 0)``)."""
    return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - logits[:, 0])


def enqueue(queue: jax.Array, ptr: jax.Array, keys: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Write ``keys (N, D)`` into the ring buffer ``queue (K, D)`` at ``ptr``; ``K % N == 0``.

    Under data parallelism ``keys`` is the *global* batch (jit sees the whole array),
    so every replica's queue receives every device's keys, in batch order.
    """
    queue = jax.lax.dynamic_update_slice(queue, keys.astype(queue.dtype), (ptr, 0))
    return queue, (ptr + keys.shape[0]) % queue.shape[0]
