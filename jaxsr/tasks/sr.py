"""Supervised SR with pixel losses: ESRGAN's PSNR-oriented stage (and SPSAGAN's step 1).

The batch holds uint8 HR patches (and LR patches for paired data). For HR-only data
the LR input is made inside the jitted step: MATLAB bicubic ×1/scale with MATLAB's
uint8 rounding, exactly as the benchmark LR images are made, so a model trained here
sees the same degradation it is evaluated on.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.errors import UserError
from jaxsr.losses.pixel import PIXEL_LOSSES
from jaxsr.models import build_model
from jaxsr.ops.imresize import imresize
from jaxsr.train.optim import make_optimizer
from jaxsr.train.state import TrainState, ema_update, state_field


def bicubic_degrade(gt_uint8: jax.Array, scale: int) -> jax.Array:
    """uint8 HR batch -> float [0, 1] LR batch, MATLAB ``imresize(hr, 1/scale)`` on uint8."""
    lq = imresize(gt_uint8.astype(jnp.float32), 1.0 / scale, quantize=True)
    return lq / 255.0


def tree_all_finite(tree) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def guarded(ok, new, old):
    """``new`` where the step was finite, else ``old`` (a NaN step changes nothing)."""
    return jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, old)


class SupervisedSR:
    """Generator trained with a weighted sum of pixel losses (``config.losses``)."""

    def __init__(self, config):
        self.config = config
        self.scale = config.scale
        model_kwargs = dict(config.model)
        name = model_kwargs.pop("name")
        self.model = build_model(
            name,
            scale=config.scale,
            dtype=jnp.dtype(config.dtype),
            remat=config.remat,
            **model_kwargs,
        )
        unknown = set(config.losses) - set(PIXEL_LOSSES)
        if unknown:
            raise UserError(
                f"Unknown loss(es) {sorted(unknown)} for task 'sr'; "
                f"choose from {sorted(PIXEL_LOSSES)}."
            )
        self.losses = {k: float(w) for k, w in config.losses.items() if w}
        self.tx, self.schedule = make_optimizer(config.optim)
        self.ema_decay = float(config.ema_decay)

    # -- the task interface used by train.loop --------------------------------------
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

    def constants(self) -> dict:
        """Frozen arrays the step reads (none for pixel losses)."""
        return {}

    def lq_input(self, batch: dict) -> jax.Array:
        if "lq" in batch:
            return batch["lq"].astype(jnp.float32) / 255.0
        return bicubic_degrade(batch["gt"], self.scale)

    def prepare(self, state: TrainState, batch: dict):
        """``(gt, lq)`` float [0, 1] for one step (subclasses add noise, MixUp, ...)."""
        return batch["gt"].astype(jnp.float32) / 255.0, self.lq_input(batch)

    def output(self, params, lq):
        """The network output the losses see."""
        return self.model.apply({"params": params}, lq)

    def train_step(self, state: TrainState, batch: dict, consts: dict):
        gt, lq = self.prepare(state, batch)

        def loss_fn(params):
            sr = self.output(params, lq)
            terms = {name: fn(sr, gt) for name, fn in PIXEL_LOSSES.items() if name in self.losses}
            total = sum(self.losses[n] * v for n, v in terms.items())
            return total, terms

        (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["g"])
        updates, opt_state = self.tx.update(grads, state.opt_state["g"], state.params["g"])
        params = jax.tree.map(jnp.add, state.params["g"], updates)
        ok = jnp.isfinite(loss) & tree_all_finite(grads)
        new = state.replace(
            step=state.step + 1,
            params={"g": guarded(ok, params, state.params["g"])},
            opt_state={"g": guarded(ok, opt_state, state.opt_state["g"])},
            ema=None
            if state.ema is None
            else guarded(ok, ema_update(state.ema, params, self.ema_decay), state.ema),
        )
        metrics = {
            "loss": loss,
            **{f"loss_{n}": v for n, v in terms.items()},
            "lr": self.schedule(state.step),
            "grad_norm": jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads))),
            "nonfinite": 1.0 - ok.astype(jnp.float32),
        }
        return new, metrics

    @staticmethod
    def model_variables(raw) -> dict:
        """The generator's variables in a train state (``TrainState`` or restored dict):
        its EMA weights when kept, else the trained ones."""
        ema = state_field(raw, "ema")
        return {"params": ema if ema is not None else state_field(raw, "params")["g"]}

    def example_batch(self, batch_size: int) -> dict:
        """A random uint8 batch of the training shape (benchmarks)."""
        p = self.config.data.patch_size
        rng = np.random.default_rng(0)
        return {"gt": rng.integers(0, 256, (batch_size, p, p, 3), dtype=np.uint8)}

    def eval_params(self, state_or_params) -> dict:
        """The variables to evaluate: the EMA weights when kept (as BasicSR), else params."""
        if isinstance(state_or_params, TrainState):
            return self.model_variables(state_or_params)
        return state_or_params

    def predict(self, variables, lq: jax.Array) -> jax.Array:
        """LR float [0, 1] NHWC -> SR float (unclamped)."""
        return self.model.apply(variables, lq)
