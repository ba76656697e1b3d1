"""Tensor layout rules from PyTorch state dicts to Flax parameter trees (spec §0)."""

from __future__ import annotations

import numpy as np

from jaxsr.errors import UserError


def _check_rank(w: np.ndarray, rank: int, what: str, key: str) -> np.ndarray:
    w = np.asarray(w)
    if w.ndim != rank:
        raise UserError(
            f"{key or 'a tensor'} has shape {w.shape}, but a {what} weight has {rank} dimensions; "
            "is the file from the official code?"
        )
    return w


def conv_kernel(w: np.ndarray, key: str = "") -> np.ndarray:
    """``Conv2d.weight`` (O, I, kH, kW) -> Flax HWIO (``key`` names it in errors)."""
    return np.ascontiguousarray(_check_rank(w, 4, "Conv2d", key).transpose(2, 3, 1, 0))


def transposed_conv_kernel(w: np.ndarray, key: str = "") -> np.ndarray:
    """``ConvTranspose2d.weight`` (I, O, k, k) -> ``(k, k, I, O)``: PyTorch's taps, unflipped,
    as :class:`jaxsr.models.layers.ConvTranspose` stores them."""
    return np.ascontiguousarray(_check_rank(w, 4, "ConvTranspose2d", key).transpose(2, 3, 0, 1))


def dense_kernel(w: np.ndarray, key: str = "") -> np.ndarray:
    """``Linear.weight`` (out, in) -> Flax (in, out)."""
    return np.ascontiguousarray(_check_rank(w, 2, "Linear", key).T)


def strip_prefix(state_dict: dict, prefix: str = "module.") -> dict:
    """Drop a DataParallel ``module.`` prefix where every key has it."""
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix) :]: v for k, v in state_dict.items()}
    return dict(state_dict)


def unwrap(checkpoint: dict) -> dict:
    """The state dict inside BasicSR / MIRNet style wrappers.

    Prefers ``params_ema`` (BasicSR's EMA weights, the ones it evaluates) over
    ``params``, then ``state_dict``; a bare state dict is returned as is.
    """
    for key in ("params_ema", "params", "state_dict", "model"):
        inner = checkpoint.get(key)
        if isinstance(inner, dict) and inner:
            return strip_prefix(inner)
    return strip_prefix(checkpoint)
