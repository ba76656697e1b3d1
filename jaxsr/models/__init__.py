"""Flax Linen architectures, one module per family. ``MODELS`` maps config names to classes."""

from __future__ import annotations

from jaxsr.models.rrdbnet import RRDBNet

MODELS = {"rrdbnet": RRDBNet}


def build_model(name: str, **kwargs):
    """Instantiate ``MODELS[name](**kwargs)``; an unknown name lists the valid ones."""
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}.")
    return MODELS[name](**kwargs)


__all__ = ["MODELS", "RRDBNet", "build_model"]
