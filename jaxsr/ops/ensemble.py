"""Geometric self-ensemble (×8): average a model over the 8 flips/rotations of its input.

Lim et al. (EDSR, 2017) and MIRNet's test scripts report it as "+": each transformed
input is restored, transformed back, and the eight results are averaged. Works for
any model whose output is aligned with its input (same-size or ×s).
"""

from __future__ import annotations

import jax.numpy as jnp


def dihedral(x, k: int):
    """The k-th of the 8 dihedral transforms of an NHWC batch (transpose, then rot90)."""
    if k >= 4:
        x = jnp.swapaxes(x, 1, 2)
    return jnp.rot90(x, k % 4, axes=(1, 2))


def inverse_dihedral(y, k: int):
    y = jnp.rot90(y, -(k % 4), axes=(1, 2))
    return jnp.swapaxes(y, 1, 2) if k >= 4 else y


def self_ensemble(apply):
    """``apply(variables, x)`` -> the same signature averaged over the 8 transforms."""

    def run(variables, x):
        outs = [inverse_dihedral(apply(variables, dihedral(x, k)), k) for k in range(8)]
        return sum(outs) / 8.0

    return run
