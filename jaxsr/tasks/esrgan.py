"""ESRGAN stage 2: RRDBNet against a VGG-style discriminator (RaGAN) + VGG19 perceptual loss.

Wang et al., ESRGAN (ECCVW 2018), Sec. 3 and 4.1, as BasicSR's ``ESRGANModel``
computes it (spec §1.3). One jitted step updates both networks:

* G step (D frozen): ``L_G = w_percep·L1(φ(SR), φ(HR)) + w_gan·L_RaGAN + w_pix·L1(SR, HR)``
  with φ = VGG19 ``conv5_4`` *before* its ReLU, and D's logits on HR detached;
* D step on the same SR output (detached): ``0.5·BCE(D(HR) − E[D(SR)], 1) +
  0.5·BCE(D(SR) − E[D(HR)], 0)`` with detached means.

Both use D in train mode (BatchNorm batch statistics), as the official code. The VGG
weights are a frozen constant passed to the step, not part of the train state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxsr.errors import UserError
from jaxsr.losses.gan import gan_loss, ragan_discriminator_losses, ragan_generator_loss
from jaxsr.losses.perceptual import perceptual_loss
from jaxsr.losses.pixel import PIXEL_LOSSES
from jaxsr.models import build_model
from jaxsr.models.discriminator import VGGStyleDiscriminator
from jaxsr.models.vgg import VGG19Features, load_vgg19_params, random_vgg19_params
from jaxsr.tasks.sr import SupervisedSR, guarded, tree_all_finite
from jaxsr.train.optim import make_optimizer
from jaxsr.train.state import TrainState, ema_update

LOSS_NAMES = ("l1", "mse", "charbonnier", "perceptual", "gan")


class ESRGAN(SupervisedSR):
    """G + D adversarial SR; inherits LR synthesis, prediction and eval weights."""

    def __init__(self, config):
        unknown = set(config.losses) - set(LOSS_NAMES)
        if unknown:
            raise UserError(
                f"Unknown loss(es) {sorted(unknown)} for task 'esrgan'; "
                f"choose from {list(LOSS_NAMES)}."
            )
        self.config = config
        self.scale = config.scale
        name, kwargs = _model_kwargs(config)
        self.model = build_model(name, dtype=jnp.dtype(config.dtype), remat=config.remat, **kwargs)
        self.disc = VGGStyleDiscriminator(
            num_feat=config.discriminator.num_feat,
            input_size=config.data.patch_size,
            dtype=jnp.dtype(config.dtype),
        )
        self.layer_weights = {k: float(v) for k, v in config.perceptual.layer_weights.items()}
        self.vgg = VGG19Features(
            tuple(self.layer_weights), normalize=True, dtype=jnp.dtype(config.dtype)
        )
        self.weights = {k: float(v) for k, v in config.losses.items() if v}
        self.gan_type = config.gan_type
        self.tx, self.schedule = make_optimizer(config.optim)
        self.tx_d, self.schedule_d = make_optimizer(config.optim_d)
        self.ema_decay = float(config.ema_decay)

    def constants(self) -> dict:
        if "perceptual" not in self.weights:
            return {}
        path = self.config.vgg_weights
        if path == "random":
            logging.warning(
                "Using a RANDOMLY INITIALISED VGG19 for the perceptual loss (vgg_weights="
                "'random'): fine for tests and demos, meaningless for real training."
            )
            return {"vgg": random_vgg19_params(jax.random.key(1), tuple(self.layer_weights))}
        return {"vgg": load_vgg19_params(path, tuple(self.layer_weights))}

    def init(self, rng: jax.Array) -> TrainState:
        g_rng, d_rng, rng = jax.random.split(rng, 3)
        p = self.config.data.patch_size
        g_params = self.model.init(g_rng, jnp.zeros((1, p // self.scale, p // self.scale, 3)))[
            "params"
        ]
        d_vars = self.disc.init(d_rng, jnp.zeros((1, p, p, 3)), train=False)
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            rng=rng,
            params={"g": g_params, "d": d_vars["params"]},
            opt_state={"g": self.tx.init(g_params), "d": self.tx_d.init(d_vars["params"])},
            batch_stats={"d": d_vars["batch_stats"]},
            ema=g_params if self.ema_decay else None,
            extras={},
        )

    def restore_pretrained(self, state: TrainState) -> TrainState:
        """Start G from ``config.init_from`` (a PSNR-stage workdir or an imported model)."""
        path = self.config.init_from
        if not path:
            return state
        from jaxsr.saved_model import load_model_description

        name, kwargs, variables = load_model_description(path)
        want_name, want_kwargs = _model_kwargs(self.config)
        if (name, kwargs) != (want_name, want_kwargs):
            raise UserError(
                f"init_from={path!r} holds {name} {kwargs}, but this config builds {want_name} "
                f"{want_kwargs}; match config.model/scale to it."
            )
        params = jax.tree.map(
            lambda x, ref: jnp.asarray(np.asarray(x), ref.dtype),
            variables["params"],
            state.params["g"],
        )
        sharding = jax.tree.leaves(state.params["g"])[0].sharding
        params = jax.device_put(params, sharding)
        logging.info("Generator initialised from %s.", path)
        return state.replace(
            params={**state.params, "g": params},
            opt_state={**state.opt_state, "g": jax.device_put(self.tx.init(params), sharding)},
            ema=jax.tree.map(jnp.copy, params) if state.ema is not None else None,
        )

    def _d(self, params, stats, x):
        logits, updates = self.disc.apply(
            {"params": params, "batch_stats": stats}, x, train=True, mutable=["batch_stats"]
        )
        return logits, updates["batch_stats"]

    def train_step(self, state: TrainState, batch: dict, consts: dict):
        gt = batch["gt"].astype(jnp.float32) / 255.0
        lq = self.lq_input(batch)
        w = self.weights
        g_params, d_params = state.params["g"], state.params["d"]
        ragan = self.gan_type == "ragan"

        def features(x):
            return self.vgg.apply({"params": consts["vgg"]}, x)

        def g_loss_fn(gp):
            sr = self.model.apply({"params": gp}, lq)
            terms = {}
            for name in ("l1", "mse", "charbonnier"):
                if name in w:
                    terms[f"pix_{name}"] = w[name] * PIXEL_LOSSES[name](sr, gt)
            if "perceptual" in w:
                terms["percep"] = w["perceptual"] * perceptual_loss(
                    features, sr, gt, self.layer_weights, self.config.perceptual.criterion
                )
            stats = state.batch_stats["d"]
            if "gan" in w:
                real, stats = self._d(d_params, stats, gt)
                fake, stats = self._d(d_params, stats, sr)
                adv = (
                    ragan_generator_loss(real, fake)
                    if ragan
                    else gan_loss(self.gan_type, fake, True, is_disc=False)
                )
                terms["gan_g"] = w["gan"] * adv
            return sum(terms.values()), (terms, sr, stats)

        (g_loss, (terms, sr, stats)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
            g_params
        )
        g_updates, g_opt = self.tx.update(g_grads, state.opt_state["g"], g_params)
        new_g = jax.tree.map(jnp.add, g_params, g_updates)
        metrics = {f"loss_{k}": v for k, v in terms.items()}

        ok = jnp.isfinite(g_loss) & tree_all_finite(g_grads)
        new_d, d_opt = d_params, state.opt_state["d"]
        if "gan" in w:
            sr_d = jax.lax.stop_gradient(sr)

            def d_loss_fn(dp):
                real, st = self._d(dp, stats, gt)
                fake, st = self._d(dp, st, sr_d)
                if ragan:
                    parts = ragan_discriminator_losses(real, fake)
                else:
                    parts = (
                        gan_loss(self.gan_type, real, True, is_disc=True),
                        gan_loss(self.gan_type, fake, False, is_disc=True),
                    )
                return parts[0] + parts[1], (parts, jnp.mean(real), jnp.mean(fake), st)

            (d_loss, (parts, out_real, out_fake, stats)), d_grads = jax.value_and_grad(
                d_loss_fn, has_aux=True
            )(d_params)
            d_updates, d_opt = self.tx_d.update(d_grads, state.opt_state["d"], d_params)
            new_d = jax.tree.map(jnp.add, d_params, d_updates)
            ok = ok & jnp.isfinite(d_loss) & tree_all_finite(d_grads)
            metrics.update(
                loss_d_real=parts[0], loss_d_fake=parts[1], out_d_real=out_real, out_d_fake=out_fake
            )

        new = state.replace(
            step=state.step + 1,
            params=guarded(ok, {"g": new_g, "d": new_d}, state.params),
            opt_state=guarded(ok, {"g": g_opt, "d": d_opt}, state.opt_state),
            batch_stats=guarded(ok, {"d": stats}, state.batch_stats),
            ema=None
            if state.ema is None
            else guarded(ok, ema_update(state.ema, new_g, self.ema_decay), state.ema),
        )
        metrics.update(
            loss=g_loss, lr=self.schedule(state.step), nonfinite=1.0 - ok.astype(jnp.float32)
        )
        return new, metrics

    def eval_metrics(self, consts: dict):
        """``(sr, hr) -> {'perceptual': ...}``: the perceptual distance, logged at eval."""
        if "vgg" not in consts:
            return None
        fn = jax.jit(
            lambda c, sr, hr: perceptual_loss(
                lambda x: self.vgg.apply({"params": c}, x),
                sr,
                hr,
                self.layer_weights,
                self.config.perceptual.criterion,
            )
        )
        return lambda sr, hr: {"perceptual": float(fn(consts["vgg"], sr, hr))}


def _model_kwargs(config) -> tuple[str, dict]:
    from jaxsr.saved_model import model_kwargs_from_config

    return model_kwargs_from_config(config)
