"""Real-ESRGAN: RealESRNet and RealESRGAN trained on the second-order degradations.

Wang et al., Real-ESRGAN (ICCVW 2021), as the official ``RealESRNetModel`` /
``RealESRGANModel`` compute an iteration (spec and ``configs/realesrgan.py``):

* ``feed_data``: the uint8 GT crops are USM-sharpened and degraded into the LR input
  (:func:`jaxsr.data.realworld.degrade`, inside the jitted step), the pair goes through
  the training-pair pool (:func:`pool_exchange`), and the GT that comes out of the pool
  is sharpened again;
* RealESRNet: L1 between G(LR) and the (sharpened, ``gt_usm.l1``) GT;
* RealESRGAN: G step with D frozen — L1 + VGG19 perceptual + vanilla GAN on the U-Net
  discriminator's per-pixel logits; then D's step on the real GT and the detached SR.
  With ``config.net_steps`` the run begins with that many RealESRNet steps (L1 alone, D
  idle) and goes on to the GAN stage with the same G, its EMA restarted from it: the
  paper's two runs as two phases of one (the ``demo`` preset; the paper recipe starts
  from ``init_from``).
  Spectral normalisation's power iteration runs on every D call in training, as the
  PyTorch hooks do (G's fake pass, D's real pass, D's fake pass: three per step).

The exported network is the generator's EMA (the released ``params_ema``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxsr.data.realworld import degrade, usm_sharp
from jaxsr.errors import UserError
from jaxsr.eval.evaluator import Evaluator
from jaxsr.eval.protocols import RealWorldDegradation
from jaxsr.losses.gan import gan_loss
from jaxsr.models.unet_discriminator import UNetDiscriminatorSN
from jaxsr.tasks import base
from jaxsr.tasks.esrgan import ESRGAN
from jaxsr.tasks.sr import SupervisedSR
from jaxsr.train.state import TrainState, ema_update
from jaxsr.train.update import commit, gradient_step


def pool_exchange(rng, pool: dict, batch: dict) -> tuple[dict, dict]:
    """Real-ESRGAN's training-pair pool (``_dequeue_and_enqueue``): ``(pool, batch) ->
    (new pool, batch to train on)``. Until the pool is full, the batch is stored at the
    fill pointer and trained on as it is; once full, the pool is shuffled, its first
    ``b`` pairs are trained on and the batch takes their place. ``pool`` holds ``count``
    and, per key of ``batch``, an array of ``pool_size`` items (``pool_size`` a multiple
    of the batch size ``b``)."""
    b = next(iter(batch.values())).shape[0]
    size = next(v for k, v in pool.items() if k != "count").shape[0]
    count = pool["count"]

    def fill(_):
        stored = {
            k: jax.lax.dynamic_update_slice_in_dim(pool[k], v.astype(pool[k].dtype), count, 0)
            for k, v in batch.items()
        }
        return {**stored, "count": count + b}, batch

    def exchange(_):
        perm = jax.random.permutation(rng, size)
        shuffled = {k: pool[k][perm] for k in batch}
        out = {k: shuffled[k][:b].astype(batch[k].dtype) for k in batch}
        stored = {k: shuffled[k].at[:b].set(v.astype(pool[k].dtype)) for k, v in batch.items()}
        return {**stored, "count": count}, out

    return jax.lax.cond(count < size, fill, exchange, None)


def _to_uint8(x):
    return jnp.clip(jnp.round(x * 255.0), 0, 255).astype(jnp.uint8)


class _RealWorldPairs:
    """What both Real-ESRGAN stages share: the config checks, the exported network's
    spec, the pool in the train state and the degraded training pair of a step."""

    @classmethod
    def check_config(cls, config) -> None:
        super().check_config(config)
        pool, batch = int(config.pool_size), int(config.data.batch_size)
        if pool and pool % batch:
            raise UserError(
                f"pool_size={pool} is not a multiple of data.batch_size={batch} (the pool "
                "trades whole batches); pick a multiple, or 0 for no pool."
            )
        if config.data.patch_size % config.scale:
            raise UserError(
                f"data.patch_size={config.data.patch_size} is not a multiple of the scale "
                f"{config.scale}; the LR crop must have whole pixels."
            )

    @classmethod
    def model_spec(cls, config) -> tuple[str, dict]:
        name, kwargs = base.model_spec(config)
        if name == "srvgg":  # SRVGGNetCompact calls its factor 'upscale', as the official code
            kwargs["upscale"] = kwargs.pop("scale")
        return name, kwargs

    def evaluator(self, consts: dict) -> Evaluator:
        """The evaluation images degraded by the pipeline with a fixed seed (the
        ``realworld`` protocol), bicubic of that input as the baseline; NIQE and, with
        a VGG loaded, the perceptual distance."""
        protocol = RealWorldDegradation(int(self.config.eval_seed), self.config.degradation)
        extra = self._perceptual_metric(consts) if hasattr(self, "_perceptual_metric") else None
        return Evaluator.from_config(self.config, protocols=[protocol], extra=extra)

    def pool_extras(self) -> dict:
        """The empty pool (``extras['pool']``): uint8 GT and LR pairs, as the LR is
        rounded to 8 bits and the GT crops are 8-bit already (a quarter of float32's
        memory, replicated on every device)."""
        size = int(self.config.pool_size)
        if not size:
            return {}
        p = self.config.data.patch_size
        lp = p // self.scale
        pool = {
            "count": jnp.zeros((), jnp.int32),
            "gt": jnp.zeros((size, p, p, 3), jnp.uint8),
            "lq": jnp.zeros((size, lp, lp, 3), jnp.uint8),
        }
        return {"pool": pool}

    def realworld_pair(self, state: TrainState, batch: dict):
        """``(gt, gt_usm, lq, state)``: this step's pair, float [0, 1], through the pool,
        and the state with the pool and the key advanced (kept even when the update is
        skipped as non-finite: the pair is data, not a result of the bad update)."""
        rng, deg_rng, pool_rng = jax.random.split(state.rng, 3)
        gt = batch["gt"].astype(jnp.float32) / 255.0
        if "lq" in batch:
            # Paired LR/HR folders (the official finetune_realesrgan_x4plus_pairdata.yml,
            # high_order_degradation: False): the LR as given, no degradations, no pool.
            lq = batch["lq"].astype(jnp.float32) / 255.0
            return gt, usm_sharp(gt), lq, state.replace(rng=rng)
        lq = degrade(deg_rng, gt, self.config)["lq"]
        extras = state.extras
        if "pool" in extras:
            pool, pair = pool_exchange(
                pool_rng, extras["pool"], {"gt": batch["gt"], "lq": _to_uint8(lq)}
            )
            extras = {**extras, "pool": pool}
            gt = pair["gt"].astype(jnp.float32) / 255.0
            lq = pair["lq"].astype(jnp.float32) / 255.0
        # Sharpened after the pool, as the official model sharpens the GT it got back.
        return gt, usm_sharp(gt), lq, state.replace(rng=rng, extras=extras)


class RealESRNet(_RealWorldPairs, SupervisedSR):
    """The first stage (``task = 'realesrnet'``): the generator on L1 alone."""

    def init(self, rng: jax.Array) -> TrainState:
        return super().init(rng).replace(extras=self.pool_extras())

    def prepare(self, state: TrainState, batch: dict):
        gt, gt_usm, lq, state = self.realworld_pair(state, batch)
        return (gt_usm if self.config.gt_usm.l1 else gt), lq, state


class RealESRGAN(_RealWorldPairs, ESRGAN):
    """The second stage (``task = 'realesrgan'``): G against the U-Net discriminator."""

    def __init__(self, config):
        super().__init__(config)
        self.disc = UNetDiscriminatorSN(
            num_feat=config.discriminator.num_feat,
            skip_connection=config.discriminator.skip_connection,
            dtype=jnp.dtype(config.dtype),
        )
        self.net_steps = int(config.net_steps)  # RealESRNet steps before the GAN stage

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
            batch_stats={"d": d_vars["spectral"]},  # u, v of the spectral norms
            ema=g_params if self.ema_decay else None,
            extras=self.pool_extras(),
        )

    def phases(self):
        """``[(first step, step fn)]``: the RealESRNet stage first when ``net_steps``."""
        if not self.net_steps:
            return [(0, self.train_step)]
        net = functools.partial(self.train_step, gan=False)
        return [(0, net), (self.net_steps, self.train_step)]

    def train_step(self, state: TrainState, batch: dict, consts: dict, *, gan: bool = True):
        """One RealESRGAN step, or with ``gan=False`` one RealESRNet step: G on the pixel
        losses alone (RealESRNet's L1, on the same targets), D and its Adam untouched."""
        if gan:
            if self.net_steps and state.ema is not None:
                # The GAN stage's EMA starts as the official second run's: a copy of the
                # G it starts from (an EMA kept over both stages would still hold the
                # random init after a short first stage: 0.999^2000 = 13 % of it).
                restart = state.step == self.net_steps
                ema = jax.tree.map(
                    lambda e, g: jnp.where(restart, g, e), state.ema, state.params["g"]
                )
                state = state.replace(ema=ema)
            return super().train_step(state, batch, consts)
        targets, _, inputs, state = self.prepare(state, batch)

        def loss_fn(g_params):
            terms = self.pixel_terms(self.generate(g_params, inputs), targets["pix"])
            return sum(terms.values()), terms

        g = gradient_step(loss_fn, state.params["g"], self.tx, state.opt_state["g"])
        ema = None if state.ema is None else ema_update(state.ema, g.params, self.ema_decay)
        new = commit(
            state,
            g.ok,
            params={**state.params, "g": g.params},
            opt_state={**state.opt_state, "g": g.opt_state},
            ema=ema,
        )
        metrics = {f"loss_{k}": v for k, v in g.aux.items()}
        metrics.update(
            loss=g.loss, lr=self.schedule(state.step), nonfinite=1.0 - g.ok.astype(jnp.float32)
        )
        return new, metrics

    def _d(self, params, spectral, x):
        logits, updates = self.disc.apply(
            {"params": params, "spectral": spectral}, x, train=True, mutable=["spectral"]
        )
        return logits, updates["spectral"]

    def prepare(self, state: TrainState, batch: dict):
        """G's targets by loss (the sharpened or the plain GT, ``config.gt_usm``), D's
        real images, the degraded input, the advanced state."""
        gt, gt_usm, lq, state = self.realworld_pair(state, batch)
        use = self.config.gt_usm
        targets = {
            "pix": gt_usm if use.l1 else gt,
            "percep": gt_usm if use.perceptual else gt,
        }
        return targets, (gt_usm if use.gan else gt), {"lq": lq}, state

    def generator_loss(self, g_params, d_params, d_stats, inputs, gt, consts):
        """``(L_G, (terms, SR, D's u/v))``: L1 and perceptual against their targets, the
        vanilla GAN term on D's logits for SR (no relativistic real pass)."""
        sr = self.generate(g_params, inputs)
        terms = self.content_terms(sr, gt["pix"], consts)
        if gt["percep"] is not gt["pix"] and "percep" in terms:
            terms["percep"] = self.content_terms(sr, gt["percep"], consts)["percep"]
        if "gan" in self.weights:
            fake, d_stats = self._d(d_params, d_stats, sr)
            terms["gan_g"] = self.weights["gan"] * gan_loss(
                self.gan_type, fake, True, is_disc=False
            )
        return sum(terms.values()), (terms, sr, d_stats)
