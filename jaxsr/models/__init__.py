"""Flax Linen architectures, one module per family; the registry names of the classes
are in :mod:`jaxsr.methods`."""

from __future__ import annotations

from jaxsr import methods
from jaxsr.models.dasr import BlindSR
from jaxsr.models.mirnet import MIRNet
from jaxsr.models.pix2pixhd import (
    Encoder,
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
)
from jaxsr.models.rrdbnet import RRDBNet
from jaxsr.models.sftgan import SFTNet
from jaxsr.models.spsagan import SPSAGenerator


def build_model(name: str, **kwargs):
    """Instantiate the model registered as ``name`` (:mod:`jaxsr.methods`); an unknown
    name lists the valid ones."""
    return methods.model_class(name)(**kwargs)


__all__ = [
    "BlindSR",
    "Encoder",
    "GlobalGenerator",
    "LocalEnhancer",
    "MIRNet",
    "MultiscaleDiscriminator",
    "RRDBNet",
    "SFTNet",
    "SPSAGenerator",
    "build_model",
]
