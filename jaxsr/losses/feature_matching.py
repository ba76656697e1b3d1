"""Multi-scale discriminator losses of pix2pixHD (Wang et al., CVPR 2018, Eq. 4; spec §4.4).

Both take a multi-scale discriminator's output: one list per scale of every layer's
output (``jaxsr.models.pix2pixhd.MultiscaleDiscriminator``), the last being the patch
score. They return one value per scale (index 0 = full resolution) so that each scale
can be logged; the loss is their sum.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsr.losses.gan import gan_loss


def multiscale_gan_loss(outputs, target_is_real: bool, kind: str = "lsgan") -> list:
    """Per scale, the GAN loss of the last layer (LSGAN: ``mean((D - 1 or 0)²)``); the
    official ``GANLoss`` sums these over scales (it does not average them)."""
    return [gan_loss(kind, scale[-1], target_is_real, is_disc=True) for scale in outputs]


def feature_matching_loss(fake_outputs, real_outputs) -> list:
    """Per scale, ``4/(n_layers+1) · 1/num_D · Σ_j mean|D_j(fake) − D_j(real)ᵈ|`` over all
    layers but the last (ᵈ: detached), the official weights; λ_feat is the caller's.
    With ``n_layers = 3`` the first factor is 1."""
    num_d = len(fake_outputs)
    per_scale = []
    for fake, real in zip(fake_outputs, real_outputs, strict=True):
        n_layers = len(fake) - 2  # the NLayer D has n_layers + 2 outputs
        weight = 4.0 / (n_layers + 1) / num_d
        terms = [
            jnp.mean(jnp.abs(f - jax.lax.stop_gradient(r)))
            for f, r in zip(fake[:-1], real[:-1], strict=True)
        ]
        per_scale.append(weight * sum(terms))
    return per_scale
