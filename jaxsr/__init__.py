"""jaxsr: super-resolution and image restoration in JAX/Flax at accelerator scale."""

import os

# TensorFlow is imported only by TFDS (TFDS sources, data.prepare); its C++ notices at
# import (oneDNN's numerics note, twice, and the CPU-feature banner) are about TF's own
# ops, which jaxsr does not compute with, and read as errors to a new user. Set before
# anything imports TF; an explicit setting of the user wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import jaxsr.files  # noqa: F401  (routes object-store clients before any library uses them)

__version__ = "0.1.0"


def load_model(path: str):
    """``(module, variables)`` of a jaxsr model directory or training workdir.

    ``module.apply(variables, lq)`` runs it on an NHWC float batch in [0, 1]. See
    :mod:`jaxsr.saved_model`.
    """
    from jaxsr.saved_model import load_model as _load

    return _load(path)
