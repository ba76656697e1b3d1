"""Optimizers and learning-rate schedules from a config block.

Config fields (``config.optim``)::

    lr            peak learning rate
    b1, b2, eps   Adam moments
    weight_decay  PyTorch-Adam style L2 (added to the gradient), 0 = off
    schedule      'constant' | 'multistep' | 'step' | 'cosine' | 'cosine_restarts'
    milestones    'multistep': steps where lr *= gamma (ESRGAN: [50k, 100k, 200k, 300k])
    step_size     'step': lr *= gamma every step_size steps (ESRGAN PSNR: 2e5)
    gamma         decay factor of 'multistep' / 'step'
    warmup_steps  linear warm-up from 0 ('cosine', MIRNet)
    decay_steps   'cosine': length of the cosine after warm-up
    periods       'cosine_restarts': period lengths (BasicSR CosineAnnealingRestartLR)
    min_lr        floor of the cosine schedules
    grad_clip     global-norm clipping, 0 = off
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from jaxsr.errors import UserError

SCHEDULES = ("constant", "multistep", "step", "cosine", "cosine_restarts")


def make_schedule(cfg) -> optax.Schedule:
    name = cfg.schedule
    if name == "constant":
        return optax.constant_schedule(cfg.lr)
    if name == "multistep":
        return optax.piecewise_constant_schedule(
            cfg.lr, {int(m): cfg.gamma for m in cfg.milestones}
        )
    if name == "step":
        return optax.exponential_decay(cfg.lr, cfg.step_size, cfg.gamma, staircase=True)
    if name == "cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, cfg.lr, cfg.warmup_steps, cfg.warmup_steps + cfg.decay_steps, cfg.min_lr
        )
    if name == "cosine_restarts":
        scheds = [optax.cosine_decay_schedule(cfg.lr, p, cfg.min_lr / cfg.lr) for p in cfg.periods]
        bounds, total = [], 0
        for p in cfg.periods[:-1]:
            total += p
            bounds.append(total)
        return optax.join_schedules(scheds, bounds)
    raise UserError(f"Unknown lr schedule {name!r}; choose one of {list(SCHEDULES)}.")


def epoch_linear_decay(lr: float, niter: int, niter_decay: int, steps_per_epoch: int):
    """pix2pixHD's schedule: ``lr`` for ``niter`` epochs, then lowered by ``lr/niter_decay``
    after each of the next ``niter_decay`` epochs (per epoch, as the official
    ``update_learning_rate``), counted in steps of ``steps_per_epoch``."""

    def schedule(step):
        epoch = step // steps_per_epoch
        decays = jnp.clip(epoch - niter, 0, niter_decay)
        return lr * (1.0 - decays / max(niter_decay, 1))

    return schedule


def make_adam(cfg) -> optax.GradientTransformation:
    """Adam's direction (PyTorch semantics: clip, L2, moments), without the learning rate."""
    parts = []
    if cfg.get("grad_clip", 0):
        parts.append(optax.clip_by_global_norm(cfg.grad_clip))
    if cfg.get("weight_decay", 0):
        parts.append(optax.add_decayed_weights(cfg.weight_decay))
    parts.append(optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
    return optax.chain(*parts)


def make_optimizer(cfg) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Adam (PyTorch semantics) with the configured schedule; returns ``(tx, schedule)``."""
    schedule = make_schedule(cfg)
    return optax.chain(make_adam(cfg), optax.scale_by_learning_rate(schedule)), schedule
