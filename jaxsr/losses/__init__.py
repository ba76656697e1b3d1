"""Losses; they take arrays (or apply functions), never models."""

from jaxsr.losses.contrastive import contrastive_logits, enqueue, info_nce, l2_normalize
from jaxsr.losses.pixel import PIXEL_LOSSES, charbonnier_loss, l1_loss, mse_loss

__all__ = [
    "PIXEL_LOSSES",
    "charbonnier_loss",
    "contrastive_logits",
    "enqueue",
    "info_nce",
    "l1_loss",
    "l2_normalize",
    "mse_loss",
]
