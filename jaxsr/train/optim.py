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
    lr_groups     ((regex, factor), ...): parameters whose path ('a/b/kernel') matches
                  a regex (first match wins) train at factor × lr, each with its own
                  Adam moments (SFTGAN: (('SFT|Cond', 5.0),) -> 5e-4 beside 1e-4)
"""

from __future__ import annotations

import re

import jax
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


def make_adam(cfg, *, clip: bool = True) -> optax.GradientTransformation:
    """Adam's direction (PyTorch semantics: clip, L2, moments), without the learning rate
    (``clip=False``: the caller clips, on the norm of more parameters than these)."""
    parts = []
    if clip and cfg.get("grad_clip", 0):
        parts.append(optax.clip_by_global_norm(cfg.grad_clip))
    if cfg.get("weight_decay", 0):
        parts.append(optax.add_decayed_weights(cfg.weight_decay))
    parts.append(optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
    return optax.chain(*parts)


def param_groups(groups) -> callable:
    """``params -> labels``: each leaf's group index (as a string) for the first regex of
    ``groups`` (``((regex, factor), ...)``) its ``/``-joined path matches, else ``'base'``."""
    patterns = [re.compile(pattern) for pattern, _ in groups]

    def label(path, _):
        name = "/".join(str(getattr(k, "key", k)) for k in path)
        return next((str(i) for i, p in enumerate(patterns) if p.search(name)), "base")

    return lambda params: jax.tree_util.tree_map_with_path(label, params)


def make_optimizer(cfg) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Adam (PyTorch semantics) with the configured schedule; returns ``(tx, schedule)``
    (the base schedule; ``lr_groups`` scale it per parameter group)."""
    schedule = make_schedule(cfg)
    groups = tuple(cfg.get("lr_groups", ()))
    if not groups:
        return optax.chain(make_adam(cfg), optax.scale_by_learning_rate(schedule)), schedule
    for group in groups:
        if len(group) != 2 or not isinstance(group[0], str) or float(group[1]) <= 0:
            raise UserError(
                f"optim.lr_groups entry {group!r} is not a (regex, positive factor) pair."
            )

    # Clip on the global norm of all gradients (as PyTorch's clip_grad_norm_), then
    # Adam per group: Adam is elementwise, so only the step size differs by group.
    def scaled(factor):
        return optax.chain(
            make_adam(cfg, clip=False),
            optax.scale_by_learning_rate(lambda step: factor * schedule(step)),
        )

    transforms = {"base": scaled(1.0)}
    transforms.update({str(i): scaled(float(f)) for i, (_, f) in enumerate(groups)})
    tx = optax.multi_transform(transforms, param_groups(groups))
    if cfg.get("grad_clip", 0):
        tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), tx)
    return tx, schedule
