"""Perceptual (feature) loss over a frozen feature extractor.

Johnson et al. 2016 / ESRGAN Sec. 3.3: distance between features of the SR and HR
images. The loss takes the feature function, not a model, so it works with any
extractor (``features(images) -> {layer: array}``); the HR features are detached.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def perceptual_loss(features, sr, hr, layer_weights: dict, criterion: str = "l1"):
    """``Σ_layer w · mean(dist(φ(sr), φ(hr)))`` with ``dist`` L1, L2 (MSE) or 'fro'."""
    both = features(jnp.concatenate([sr, jax.lax.stop_gradient(hr)], axis=0))
    n = sr.shape[0]
    total = 0.0
    for layer, weight in layer_weights.items():
        f_sr, f_hr = both[layer][:n], jax.lax.stop_gradient(both[layer][n:])
        if criterion == "l1":
            d = jnp.mean(jnp.abs(f_sr - f_hr))
        elif criterion == "l2":
            d = jnp.mean(jnp.square(f_sr - f_hr))
        elif criterion == "fro":
            d = jnp.sqrt(jnp.sum(jnp.square(f_sr - f_hr)))
        else:
            raise ValueError(f"Unknown perceptual criterion {criterion!r}; use l1, l2 or fro.")
        total = total + weight * d
    return total
