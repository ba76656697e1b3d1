"""Step building blocks the tasks compose: differentiate, update, guard against NaN.

Every task's step ends the same way: gradients of a loss, an optax update, and a
guard so that a step whose loss or gradients are not finite changes nothing (the
loop then stops with a clear message at the next boundary, keeping the last good
checkpoint). :func:`gradient_step` does the first two for one network (a GAN step
calls it once for G and once for D); :func:`commit` applies the guard to the new
state fields.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


def tree_all_finite(tree) -> jax.Array:
    """True when every leaf of ``tree`` is finite."""
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def guarded(ok, new, old):
    """``new`` where the step was finite, else ``old`` (a NaN step changes nothing)."""
    return jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)


def apply_updates(tx, grads, opt_state, params, *, lr=None):
    """One optax update: ``(new params, new optimizer state)``.

    ``lr`` scales updates of a learning-rate-free transformation (``params - lr·u``),
    for tasks whose schedule follows the global step rather than the optimizer's own
    count (DASR's Adam of the SR network starts counting at stage 2).
    """
    updates, opt_state = tx.update(grads, opt_state, params)
    if lr is not None:  # written as the official step writes it, for identical rounding
        return jax.tree.map(lambda p, u: p - lr * u, params, updates), opt_state
    return optax.apply_updates(params, updates), opt_state


class GradientStep(NamedTuple):
    loss: jax.Array
    aux: Any
    params: Any
    opt_state: Any
    grads: Any
    ok: jax.Array  # loss and gradients finite


def gradient_step(loss_fn, params, tx, opt_state, *, lr=None) -> GradientStep:
    """Differentiate ``loss_fn(params) -> (loss, aux)`` and update ``params`` with ``tx``."""
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    new_params, new_opt = apply_updates(tx, grads, opt_state, params, lr=lr)
    ok = jnp.isfinite(loss) & tree_all_finite(grads)
    return GradientStep(loss, aux, new_params, new_opt, grads, ok)


def commit(state, ok, **fields):
    """The next state: ``step + 1`` and each given field, kept at its old value when
    the step was not finite (``ok`` false)."""
    guarded_fields = {k: guarded(ok, v, getattr(state, k)) for k, v in fields.items()}
    return state.replace(step=state.step + 1, **guarded_fields)


def global_norm(tree) -> jax.Array:
    """The gradient norm logged as ``grad_norm``."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(tree)))
