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

from jaxsr.eval.evaluator import Evaluator
from jaxsr.losses.gan import gan_loss, ragan_discriminator_losses, ragan_generator_loss
from jaxsr.losses.perceptual import perceptual_loss
from jaxsr.losses.pixel import PIXEL_LOSSES
from jaxsr.models import build_model
from jaxsr.models.discriminator import VGGStyleDiscriminator
from jaxsr.models.vgg import VGG19Features
from jaxsr.tasks.base import Task, run_options
from jaxsr.tasks.sr import sr_input
from jaxsr.train.optim import make_optimizer
from jaxsr.train.state import TrainState, ema_update
from jaxsr.train.update import commit, gradient_step
from jaxsr.weights.vgg import loss_vgg19_params


class ESRGAN(Task):
    """G + D adversarial SR (``task = 'esrgan'``): LR synthesis, export and evaluation
    as the PSNR stage (``jaxsr.tasks.sr``), a G step and a D step per iteration."""

    losses = (*PIXEL_LOSSES, "perceptual", "gan")

    def __init__(self, config):
        super().__init__(config)
        name, kwargs = self.model_spec(config)
        self.model = build_model(name, **run_options(config, name), **kwargs)
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
        return {"vgg": loss_vgg19_params(self.config.vgg_weights, self.layer_weights)}

    def init(self, rng: jax.Array) -> TrainState:
        g_rng, d_rng, rng = jax.random.split(rng, 3)
        p = self.config.data.patch_size
        lp = p // self.scale
        g_params = self.model.init(g_rng, jnp.zeros((1, lp, lp, 3)))["params"]
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

    def _d(self, params, stats, x):
        logits, updates = self.disc.apply(
            {"params": params, "batch_stats": stats}, x, train=True, mutable=["batch_stats"]
        )
        return logits, updates["batch_stats"]

    def inputs(self, batch: dict) -> dict:
        """What the generator reads from a batch: the LR input (SFTGAN adds its prior)."""
        return {"lq": sr_input(batch, self.scale)}

    def generate(self, g_params, inputs: dict):
        return self.model.apply({"params": g_params}, inputs["lq"])

    def pixel_terms(self, sr, gt) -> dict:
        """The weighted pixel terms of the G loss (``pix_l1``, ...)."""
        w = self.weights
        return {f"pix_{n}": w[n] * fn(sr, gt) for n, fn in PIXEL_LOSSES.items() if n in w}

    def content_terms(self, sr, gt, consts) -> dict:
        """The weighted pixel and perceptual terms of the G loss."""
        w = self.weights
        terms = self.pixel_terms(sr, gt)
        if "perceptual" in w:
            features = lambda x: self.vgg.apply({"params": consts["vgg"]}, x)  # noqa: E731
            terms["percep"] = w["perceptual"] * perceptual_loss(
                features, sr, gt, self.layer_weights, self.config.perceptual.criterion
            )
        return terms

    def generator_loss(self, g_params, d_params, d_stats, inputs, gt, consts):
        """``(L_G, (terms, SR, D's batch stats))`` with D frozen (spec §1.3)."""
        sr = self.generate(g_params, inputs)
        terms = self.content_terms(sr, gt, consts)
        if "gan" in self.weights:
            real, d_stats = self._d(d_params, d_stats, gt)
            fake, d_stats = self._d(d_params, d_stats, sr)
            adv = (
                ragan_generator_loss(real, fake)
                if self.gan_type == "ragan"
                else gan_loss(self.gan_type, fake, True, is_disc=False)
            )
            terms["gan_g"] = self.weights["gan"] * adv
        return sum(terms.values()), (terms, sr, d_stats)

    def discriminator_loss(self, d_params, d_stats, sr, gt, inputs):
        """``(L_D, (real/fake parts, mean logits, D's batch stats))`` on detached SR."""
        real, d_stats = self._d(d_params, d_stats, gt)
        fake, d_stats = self._d(d_params, d_stats, jax.lax.stop_gradient(sr))
        if self.gan_type == "ragan":
            parts = dict(zip(("real", "fake"), ragan_discriminator_losses(real, fake), strict=True))
        else:
            parts = {
                "real": gan_loss(self.gan_type, real, True, is_disc=True),
                "fake": gan_loss(self.gan_type, fake, False, is_disc=True),
            }
        return sum(parts.values()), (parts, jnp.mean(real), jnp.mean(fake), d_stats)

    def prepare(self, state: TrainState, batch: dict):
        """``(G's targets, D's real images, G's inputs, state)`` of one step: here the
        batch's GT for both and :meth:`inputs`; a subclass that degrades on the device
        (Real-ESRGAN) makes its pair here and returns the state the step continues from."""
        gt = batch["gt"].astype(jnp.float32) / 255.0
        return gt, gt, self.inputs(batch), state

    def train_step(self, state: TrainState, batch: dict, consts: dict):
        targets, gt, inputs, state = self.prepare(state, batch)
        d_params = state.params["d"]
        g = gradient_step(
            lambda gp: self.generator_loss(
                gp, d_params, state.batch_stats["d"], inputs, targets, consts
            ),
            state.params["g"],
            self.tx,
            state.opt_state["g"],
        )
        terms, sr, stats = g.aux
        metrics = {f"loss_{k}": v for k, v in terms.items()}
        ok, new_d, d_opt = g.ok, d_params, state.opt_state["d"]
        if "gan" in self.weights:
            d = gradient_step(
                lambda dp: self.discriminator_loss(dp, stats, sr, gt, inputs),
                d_params,
                self.tx_d,
                state.opt_state["d"],
            )
            parts, out_real, out_fake, stats = d.aux
            ok, new_d, d_opt = ok & d.ok, d.params, d.opt_state
            metrics.update({f"loss_d_{k}": v for k, v in parts.items()})
            metrics.update(out_d_real=out_real, out_d_fake=out_fake)
        ema = None if state.ema is None else ema_update(state.ema, g.params, self.ema_decay)
        new = commit(
            state,
            ok,
            params={"g": g.params, "d": new_d},
            opt_state={"g": g.opt_state, "d": d_opt},
            batch_stats={"d": stats},
            ema=ema,
        )
        metrics.update(
            loss=g.loss, lr=self.schedule(state.step), nonfinite=1.0 - ok.astype(jnp.float32)
        )
        return new, metrics

    def evaluator(self, consts: dict) -> Evaluator:
        """Bicubic SR protocol, plus the perceptual distance when a VGG is loaded."""
        return Evaluator.from_config(self.config, extra=self._perceptual_metric(consts))

    def _perceptual_metric(self, consts: dict):
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
