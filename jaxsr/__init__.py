"""jaxsr: super-resolution and image restoration in JAX/Flax at accelerator scale."""

import jaxsr.files  # noqa: F401  (routes object-store clients before any library uses them)

__version__ = "0.1.0"


def load_model(path: str):
    """``(module, variables)`` of a jaxsr model directory or training workdir.

    ``module.apply(variables, lq)`` runs it on an NHWC float batch in [0, 1]. See
    :mod:`jaxsr.saved_model`.
    """
    from jaxsr.saved_model import load_model as _load

    return _load(path)
