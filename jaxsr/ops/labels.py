"""Semantic label and instance maps as network inputs (pix2pixHD, spec §4.3).

A label map holds one integer class id per pixel (Cityscapes ``*_labelIds.png``); an
instance map one id per object (Cityscapes ``*_instanceIds.png``: ids < 1000 are
"stuff" class ids, ``class·1000 + k`` the k-th object of a class). The networks see
the label map as a one-hot image and the instance map as its boundary ("edge") map;
the instance feature encoder averages its features inside each instance, for which
:func:`dense_instance_ids` renumbers the ids ``0..K-1`` so that the number of
instances, not the size of the ids, sets the work.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def one_hot_labels(label, label_nc: int, dtype=jnp.float32):
    """``(B, H, W)`` integer ids -> ``(B, H, W, label_nc)`` one-hot (``scatter_`` in the
    official code)."""
    return jax.nn.one_hot(label, label_nc, dtype=dtype)


def instance_edges(inst, dtype=jnp.float32):
    """``(B, H, W)`` ids -> ``(B, H, W, 1)`` boundary map: a pixel is 1 when it differs
    from its left, right, upper or lower neighbour, so both pixels of every differing
    horizontal or vertical pair are marked (pix2pixHD's ``get_edges``)."""
    # lax slices and concatenations, not indexing, .at[].set and pads: with symbolic
    # sizes (an exported pix2pixHD) ONNX converters refuse or mis-shape those.
    edge = jnp.zeros(inst.shape, bool)
    for axis in (1, 2):
        n = inst.shape[axis]
        sl = lambda a, b: jax.lax.slice_in_dim(inst, a, b, axis=axis)  # noqa: E731, B023
        diff = sl(1, n) != sl(0, n - 1)
        none = jnp.zeros_like(sl(0, 1), bool)
        edge = edge | jax.lax.concatenate([none, diff], axis)
        edge = edge | jax.lax.concatenate([diff, none], axis)
    return jnp.expand_dims(edge, -1).astype(dtype)


def input_channels(label_nc: int, use_instance: bool, feat_num: int = 0) -> int:
    """Channels of the official G input (D's is this without features, plus 3 for the
    photo): ``label_nc`` one-hot classes (3 for an RGB label image, ``label_nc`` 0), the
    instance edge map, ``feat_num`` instance features."""
    return (label_nc or 3) + int(use_instance) + feat_num


def encode_labels(label, inst, label_nc: int, dtype=jnp.float32):
    """The official G/D label input: one-hot ids (``label_nc > 0``) or an RGB label image
    mapped to [-1, 1] (``label_nc`` 0), then the instance edge map unless ``inst`` is
    ``None`` (``--no_instance``)."""
    if label_nc:
        x = one_hot_labels(label, label_nc, dtype)
    else:
        x = (label.astype(jnp.float32) / 127.5 - 1.0).astype(dtype)
    if inst is not None:
        x = jnp.concatenate([x, instance_edges(inst, dtype)], -1)
    return x


def dense_instance_ids(inst, num_instances: int):
    """Renumber each image's instance ids to ``0..K-1`` in increasing id order, on device
    (static ``num_instances`` ≥ K; ids past it would alias, which the host pipeline and
    :func:`count_instances` rule out). Dense ids are unchanged."""
    big = jnp.iinfo(jnp.int32).max

    def one(ids):
        _, inverse = jnp.unique(
            ids.ravel(), return_inverse=True, size=num_instances, fill_value=big
        )
        return inverse.reshape(ids.shape)

    return jax.vmap(one)(jnp.asarray(inst, jnp.int32))


def count_instances(inst: np.ndarray) -> int:
    """The largest number of distinct instance ids in one image of a ``(B, H, W)`` batch."""
    return max(len(np.unique(m)) for m in np.asarray(inst))


def instance_average(feat, inst, num_instances: int):
    """Replace each feature by its mean over the pixels of its instance, per image and
    channel (the encoder's instance-wise average pooling). ``inst``: dense ids
    ``(B, H, W)`` in ``[0, num_instances)``."""
    b, h, w, c = feat.shape
    seg = (inst + jnp.arange(b)[:, None, None] * num_instances).reshape(-1)
    flat = feat.reshape(-1, c).astype(jnp.float32)
    n = b * num_instances
    sums = jax.ops.segment_sum(flat, seg, num_segments=n)
    counts = jax.ops.segment_sum(jnp.ones(seg.shape, jnp.float32), seg, num_segments=n)
    means = sums / jnp.maximum(counts, 1.0)[:, None]
    return means[seg].reshape(b, h, w, c).astype(feat.dtype)
