"""Losses; they take arrays (or apply functions), never models."""

from jaxsr.losses.pixel import PIXEL_LOSSES, charbonnier_loss, l1_loss, mse_loss

__all__ = ["PIXEL_LOSSES", "charbonnier_loss", "l1_loss", "mse_loss"]
