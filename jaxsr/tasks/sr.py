"""Supervised SR with pixel losses: ESRGAN's PSNR-oriented stage (and SPSAGAN's step 1).

The batch holds uint8 HR patches (and LR patches for paired data). For HR-only data
the LR input is made inside the jitted step: MATLAB bicubic ×1/scale with MATLAB's
uint8 rounding, exactly as the benchmark LR images are made, so a model trained here
sees the same degradation it is evaluated on.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsr.losses.pixel import PIXEL_LOSSES
from jaxsr.models import build_model
from jaxsr.ops.imresize import imresize
from jaxsr.tasks.base import Task, run_options
from jaxsr.train.optim import make_optimizer
from jaxsr.train.state import TrainState, ema_update
from jaxsr.train.update import commit, global_norm, gradient_step


def bicubic_degrade(gt_uint8: jax.Array, scale: int) -> jax.Array:
    """uint8 HR batch -> float [0, 1] LR batch, MATLAB ``imresize(hr, 1/scale)`` on uint8."""
    lq = imresize(gt_uint8.astype(jnp.float32), 1.0 / scale, quantize=True)
    return lq / 255.0


def sr_input(batch: dict, scale: int) -> jax.Array:
    """The float [0, 1] LR input of a batch: its paired ``lq`` patches, else the
    MATLAB bicubic ×1/scale of its HR patches made on device."""
    if "lq" in batch:
        return batch["lq"].astype(jnp.float32) / 255.0
    return bicubic_degrade(batch["gt"], scale)


class SupervisedSR(Task):
    """Generator trained with a weighted sum of pixel losses (``config.losses``)."""

    losses = tuple(PIXEL_LOSSES)

    def __init__(self, config):
        super().__init__(config)
        name, kwargs = self.model_spec(config)
        self.model = build_model(name, **run_options(config, name), **kwargs)
        self.weights = {k: float(w) for k, w in config.losses.items() if w}
        self.tx, self.schedule = make_optimizer(config.optim)
        self.ema_decay = float(config.ema_decay)

    def init(self, rng: jax.Array) -> TrainState:
        init_rng, rng = jax.random.split(rng)
        lr_patch = self.config.data.patch_size // self.scale
        dummy = jnp.zeros((1, lr_patch, lr_patch, 3), jnp.float32)
        params = self.model.init(init_rng, dummy)["params"]
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            rng=rng,
            params={"g": params},
            opt_state={"g": self.tx.init(params)},
            batch_stats={},
            ema=params if self.ema_decay else None,
            extras={},
        )

    def lq_input(self, batch: dict) -> jax.Array:
        return sr_input(batch, self.scale)

    def prepare(self, state: TrainState, batch: dict):
        """``(gt, lq, state)``: the step's float [0, 1] pair (subclasses add noise, MixUp,
        on-device degradations) and the state the step continues from (a subclass may
        advance its key or its buffers there, kept even when the update is skipped)."""
        return batch["gt"].astype(jnp.float32) / 255.0, self.lq_input(batch), state

    def output(self, params, lq):
        """The network output the losses see."""
        return self.model.apply({"params": params}, lq)

    def train_step(self, state: TrainState, batch: dict, consts: dict):
        gt, lq, state = self.prepare(state, batch)

        def loss_fn(params):
            sr = self.output(params, lq)
            terms = {name: fn(sr, gt) for name, fn in PIXEL_LOSSES.items() if name in self.weights}
            total = sum(self.weights[n] * v for n, v in terms.items())
            return total, terms

        g = gradient_step(loss_fn, state.params["g"], self.tx, state.opt_state["g"])
        ema = None if state.ema is None else ema_update(state.ema, g.params, self.ema_decay)
        new = commit(state, g.ok, params={"g": g.params}, opt_state={"g": g.opt_state}, ema=ema)
        metrics = {
            "loss": g.loss,
            **{f"loss_{n}": v for n, v in g.aux.items()},
            "lr": self.schedule(state.step),
            "grad_norm": global_norm(g.grads),
            "nonfinite": 1.0 - g.ok.astype(jnp.float32),
        }
        return new, metrics
