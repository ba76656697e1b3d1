"""Flax Linen architectures, one module per family. ``MODELS`` maps config names to classes."""

from __future__ import annotations

from jaxsr.errors import UserError
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

MODELS = {
    "rrdbnet": RRDBNet,
    "dasr": BlindSR,
    "mirnet": MIRNet,
    "pix2pixhd_global": GlobalGenerator,
    "pix2pixhd_local": LocalEnhancer,
    "pix2pixhd_discriminator": MultiscaleDiscriminator,
    "pix2pixhd_encoder": Encoder,
    "sftgan": SFTNet,
    "spsagan": SPSAGenerator,
}


def build_model(name: str, **kwargs):
    """Instantiate ``MODELS[name](**kwargs)``; an unknown name lists the valid ones."""
    if name not in MODELS:
        raise UserError(f"Unknown model {name!r}; choose one of {sorted(MODELS)}.")
    return MODELS[name](**kwargs)


__all__ = [
    "MODELS",
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
