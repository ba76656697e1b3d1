"""Adversarial losses, computed as the official code computes them (BasicSR ``GANLoss``).

``gan_loss(kind, logits, target_is_real, is_disc)`` covers vanilla (BCE with logits),
LSGAN (MSE to 1/0), WGAN, WGAN-softplus and hinge. The generator's value is what the
caller then multiplies by its ``loss_weight``; discriminator losses are never weighted.

RaGAN (Jolicoeur-Martineau 2018, used by ESRGAN Eq. 1-2) is written out in
:func:`ragan_generator_loss` / :func:`ragan_discriminator_loss` with BasicSR's details:
the batch means are taken of *detached* logits, and each loss is the average of its two
BCE terms (the paper's sum without the 1/2; spec §1.3 - we follow the code).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

GAN_KINDS = ("vanilla", "lsgan", "wgan", "wgan_softplus", "hinge", "ragan")


def bce_with_logits(logits, target: float):
    """Mean binary cross-entropy of ``sigmoid(logits)`` against a constant target."""
    # log(1 + exp(-|x|)) + max(x, 0) - x * t, the stable form PyTorch uses.
    return jnp.mean(jnp.maximum(logits, 0) - logits * target + jnp.log1p(jnp.exp(-jnp.abs(logits))))


def gan_loss(kind: str, logits, target_is_real: bool, is_disc: bool = False):
    """The loss of ``logits`` being judged real (or fake)."""
    if kind == "vanilla":
        return bce_with_logits(logits, 1.0 if target_is_real else 0.0)
    if kind == "lsgan":
        return jnp.mean(jnp.square(logits - (1.0 if target_is_real else 0.0)))
    if kind == "wgan":
        return -jnp.mean(logits) if target_is_real else jnp.mean(logits)
    if kind == "wgan_softplus":
        return jnp.mean(jax.nn.softplus(-logits if target_is_real else logits))
    if kind == "hinge":
        if is_disc:
            signed = -logits if target_is_real else logits
            return jnp.mean(jax.nn.relu(1.0 + signed))
        return -jnp.mean(logits)
    raise ValueError(f"Unknown GAN loss {kind!r}; choose one of {list(GAN_KINDS)}.")


def ragan_generator_loss(real_logits, fake_logits):
    """ESRGAN's G loss: ``(BCE(real - E[fake], 0) + BCE(fake - E[real], 1)) / 2``.

    ``real_logits`` come from D on the HR image and carry no gradient (BasicSR detaches
    them); the means are of detached logits too.
    """
    real = jax.lax.stop_gradient(real_logits)
    fake_mean = jax.lax.stop_gradient(jnp.mean(fake_logits))
    return 0.5 * (
        bce_with_logits(real - fake_mean, 0.0) + bce_with_logits(fake_logits - jnp.mean(real), 1.0)
    )


def ragan_discriminator_losses(real_logits, fake_logits):
    """ESRGAN's D loss terms ``(0.5·BCE(real - E[fake]ᵈ, 1), 0.5·BCE(fake - E[real]ᵈ, 0))``.

    BasicSR back-propagates them one after the other; their sum is the D loss.
    ``fake_logits`` are D's outputs on the detached SR image; ᵈ marks detached means.
    """
    fake_mean = jax.lax.stop_gradient(jnp.mean(fake_logits))
    real_mean = jax.lax.stop_gradient(jnp.mean(real_logits))
    return (
        0.5 * bce_with_logits(real_logits - fake_mean, 1.0),
        0.5 * bce_with_logits(fake_logits - real_mean, 0.0),
    )


def auxiliary_classifier_loss(logits, labels, ignore_index: int = 0):
    """Mean cross-entropy of ``(B, K)`` class logits over the examples whose label is
    not ``ignore_index`` (SFTGAN's ``CrossEntropyLoss(ignore_index=0)``: background
    patches carry no category). A batch of only ignored labels gives 0 (PyTorch: NaN)."""
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
    keep = (labels != ignore_index).astype(jnp.float32)
    return jnp.sum(nll * keep) / jnp.maximum(jnp.sum(keep), 1.0)
