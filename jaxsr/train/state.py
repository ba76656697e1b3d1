"""The train state: one pytree holding everything a step reads and writes.

Networks are keyed by role (``'g'`` generator, later ``'d'`` discriminator, ``'e'``
encoder) so that a task with several networks keeps one optimizer state per network
and the loop stays generic. ``ema`` holds an exponential moving average of the
generator parameters when enabled (BasicSR evaluates and releases the EMA weights).
``extras`` is task-specific state such as MoCo's key queue.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxsr.trees import flatten_paths, nest


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar, the number of completed steps
    rng: jax.Array  # PRNG key consumed by the step (degradation noise, dropout ...)
    params: dict[str, Any]  # role -> network parameters
    opt_state: dict[str, Any]  # role -> optax state
    batch_stats: dict[str, Any]  # role -> BatchNorm statistics (empty for BN-free nets)
    ema: Any  # EMA of params['g'] or None
    extras: dict[str, Any]  # task-specific state


def state_field(state, name: str):
    """A field of a ``TrainState`` or of its restored nested-dict form (``None`` if absent,
    as Orbax drops ``None`` leaves)."""
    return state.get(name) if isinstance(state, dict) else getattr(state, name)


def ema_update(ema, params, decay: float):
    """``ema <- decay * ema + (1 - decay) * params``."""
    return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)


def partial_load(init: dict, loaded: dict, what: str) -> dict:
    """``init`` with every leaf that ``loaded`` has at the same path and shape replaced:
    extra loaded keys are ignored and missing ones keep their init, as the official
    ``load_network`` does; a leaf whose shape differs keeps its init too (logged)."""
    flat_init, flat_loaded = flatten_paths(init), flatten_paths(loaded)
    taken, mismatched = 0, []
    out = {}
    for path, value in flat_init.items():
        new = flat_loaded.get(path)
        if new is not None and tuple(np.shape(new)) == tuple(value.shape):
            out[path] = jnp.asarray(np.asarray(new), value.dtype)
            taken += 1
        else:
            if new is not None:
                mismatched.append("/".join(path))
            out[path] = value
    ignored = len(set(flat_loaded) - set(flat_init))
    logging.info(
        "%s: %d tensors loaded, %d kept their init (%d with another shape: %s), %d ignored.",
        what,
        taken,
        len(flat_init) - taken,
        len(mismatched),
        ", ".join(mismatched[:3]),
        ignored,
    )
    return nest(out)
