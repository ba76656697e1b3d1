"""DASR training: degradation representation learning (MoCo) + degradation-aware SR.

Wang et al., CVPR 2021 (spec §2). One jitted step does what the official trainer
does per iteration, with the degradation synthesised on device:

1. two HR patches per image (uint8, from the host) are blurred with one random kernel
   per image, bicubic-downscaled, given noise and quantised (``jaxsr.data.degradations``);
   patch 0 is the query, patch 1 the key (``moco.key_patch = 'other_image'`` takes the
   key patch from the batch's next image instead, under the query's kernel, so that
   content cannot identify the positive; ``moco.hard_negatives`` adds the key patch under
   another kernel as one more negative per query);
2. the key encoder is updated by momentum (m = 0.999) *before* it embeds the keys;
3. InfoNCE of the query projections against the positive keys and the queue of
   K negatives (T = 0.07), and in stage 2 the L1 loss of ``G(query, embedding)``
   against the query's HR patch — in 0–255 units, as the official code;
4. Adam updates; the keys (global batch) enter the ring-buffer queue.

**Two stages in one run.** For ``config.stages.encoder_steps`` steps only the encoder
learns (InfoNCE); afterwards encoder and SR network learn jointly. Each stage is its
own compiled step (``phases()``; the loop switches at the boundary) — a
``lax.cond`` inside one step ran 50× slower on XLA:CPU. The SR network's Adam state is untouched
in stage 1 (PyTorch's Adam skips parameters without gradients), so its bias
correction starts at stage 2 as in the official run; the learning rate follows the
global step (``optim.encoder`` schedule, then ``optim.sr``).

BatchNorm: both encoders run in train mode (batch statistics); under data
parallelism the statistics are over the global batch (the official 2-GPU run
normalised per GPU over 16 images), or over ``moco.bn_groups`` groups of it with the
keys shuffled across the groups (MoCo's shuffling BN, not in the official code).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsr.data.degradations import DegradationConfig, eval_degradations, random_degrade
from jaxsr.errors import UserError
from jaxsr.eval.evaluator import Evaluator
from jaxsr.losses.contrastive import contrastive_logits, enqueue, info_nce, l2_normalize
from jaxsr.models import build_model
from jaxsr.models.dasr import parts
from jaxsr.tasks.base import Task, run_options
from jaxsr.train.optim import make_adam, make_schedule
from jaxsr.train.state import TrainState, ema_update, state_field
from jaxsr.train.update import apply_updates, commit


class DASRTask(Task):
    """Blind SR with an unsupervised degradation encoder (``task = 'dasr'``)."""

    losses = ("l1", "contrastive")
    blind = True  # evaluated under the paper's fixed kernels (Table 2/3) by default

    def __init__(self, config):
        super().__init__(config)
        name, kwargs = self.model_spec(config)
        self.model = build_model(name, **run_options(config, name), **kwargs)
        self.encoder, self.generator = parts(self.model)
        self.dim = int(self.model.encoder_widths[-1])
        self.weights = {k: float(config.losses.get(k, 0.0)) for k in self.losses}
        self.degradation = DegradationConfig.from_config(config)
        moco = config.moco
        self.queue_size, self.momentum = int(moco.queue_size), float(moco.momentum)
        self.temperature = float(moco.temperature)
        self.key_patch = moco.get("key_patch", "same_image")
        self.bn_groups = int(moco.get("bn_groups", 1))
        self.hard_negatives = bool(moco.get("hard_negatives", False))
        if config.data.batch_size % self.bn_groups:
            raise UserError(
                f"moco.bn_groups={self.bn_groups} does not divide the global batch size "
                f"{config.data.batch_size}; choose a divisor."
            )
        if self.key_patch not in ("same_image", "other_image"):
            raise UserError(
                f"moco.key_patch is {self.key_patch!r}; choose 'same_image' (the paper) or "
                "'other_image'."
            )
        if self.queue_size % config.data.batch_size:
            raise UserError(
                f"The MoCo queue size {self.queue_size} is not a multiple of the global batch "
                f"size {config.data.batch_size}; change moco.queue_size or data.batch_size."
            )
        if config.data.get("num_patches", 1) != 2:
            raise UserError("DASR needs data.num_patches = 2 (a query and a key patch per image).")
        self.encoder_steps = int(config.stages.encoder_steps)
        self.adam = make_adam(config.optim)
        self.schedule = optax.join_schedules(
            [make_schedule(config.optim.encoder), make_schedule(config.optim.sr)],
            [self.encoder_steps],
        )

    def init(self, rng: jax.Array) -> TrainState:
        e_rng, g_rng, q_rng, rng = jax.random.split(rng, 4)
        lp = self.config.data.patch_size // self.scale
        x = jnp.zeros((1, lp, lp, 3), jnp.float32)
        e_vars = self.encoder.init(e_rng, x, train=False)
        g_params = self.generator.init(g_rng, x, jnp.zeros((1, self.dim)))["params"]
        e_params, e_stats = e_vars["params"], e_vars["batch_stats"]
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            rng=rng,
            params={"e": e_params, "g": g_params},
            opt_state={"e": self.adam.init(e_params), "g": self.adam.init(g_params)},
            batch_stats={"e": e_stats, "k": e_stats},
            ema=None,
            extras={
                # encoder_k starts as an exact copy of encoder_q
                "key_params": jax.tree.map(jnp.copy, e_params),
                "queue": l2_normalize(jax.random.normal(q_rng, (self.queue_size, self.dim))),
                "queue_ptr": jnp.zeros((), jnp.int32),
            },
        )

    def degrade(self, rng: jax.Array, gt: jax.Array) -> jax.Array:
        """uint8 HR ``(B, 2, P, P, 3)`` -> quantised LR 0–255 ``(B, 2, P/s, P/s, 3)``."""
        return random_degrade(rng, gt.astype(jnp.float32), self.degradation)[0]

    def encode(self, params, stats, images, shuffle=None):
        """Train-mode encoder: ``(fea, out, new batch stats)``.

        With ``moco.bn_groups = G > 1`` BatchNorm normalises G equal groups of the batch
        separately (statistics averaged into the running ones), and ``shuffle`` (a PRNG
        key) first permutes the images across the groups and restores the order after:
        MoCo's shuffling BN (He et al., Sec. 3.3), so that a key's statistics come
        from other images than its query's. G = 1 is the official DASR (one batch).
        """
        variables = {"params": params, "batch_stats": stats}

        def group(x):
            (fea, out), upd = self.encoder.apply(variables, x, train=True, mutable=["batch_stats"])
            return fea, out, upd["batch_stats"]

        g = self.bn_groups
        if g == 1:
            return group(images)
        if shuffle is not None:
            perm = jax.random.permutation(shuffle, images.shape[0])
            images = images[perm]
        fea, out, new = jax.vmap(group)(images.reshape(g, -1, *images.shape[1:]))
        fea, out = fea.reshape(-1, fea.shape[-1]), out.reshape(-1, out.shape[-1])
        if shuffle is not None:
            inverse = jnp.argsort(perm)
            fea, out = fea[inverse], out[inverse]
        return fea, out, jax.tree.map(lambda s: jnp.mean(s, axis=0), new)

    def keys(self, key_params, key_stats, images, shuffle=None):
        """Normalised key projections of the key encoder (train-mode BN) and its new stats."""
        _, out, new = self.encode(key_params, key_stats, images, shuffle)
        return jax.lax.stop_gradient(l2_normalize(out)), new

    def phases(self):
        """``[(first step, step fn)]``: encoder-only, then joint training."""
        stage1 = functools.partial(self.train_step, joint=False)
        return [(0, stage1), (self.encoder_steps, self.train_step)][self.encoder_steps == 0 :]

    def train_step(self, state: TrainState, batch: dict, consts: dict, *, joint: bool = True):
        """One step of stage 2 (``joint``: encoder + SR network) or stage 1 (encoder only)."""
        rng, deg_rng = jax.random.split(state.rng)
        hr = batch["gt"].astype(jnp.float32)  # (B, 2, P, P, 3), 0-255
        if self.key_patch == "other_image":
            # Image b's key patch is image b-1's second patch, degraded with image b's
            # kernel: the pair shares its degradation and nothing of its content.
            hr = jnp.stack([hr[:, 0], jnp.roll(hr[:, 1], 1, axis=0)], axis=1)
        # A batch may carry precomputed LR ("lq"): the host-side baseline of the benchmark.
        lq = batch["lq"].astype(jnp.float32) if "lq" in batch else self.degrade(deg_rng, hr)
        query, key_images = lq[:, 0], lq[:, 1]
        ex = state.extras
        key_params = ema_update(ex["key_params"], state.params["e"], self.momentum)
        shuffle = jax.random.fold_in(deg_rng, 1) if self.bn_groups > 1 else None
        hard = None
        if self.hard_negatives:
            # The key patch again, under a kernel drawn anew: same content, another
            # degradation — a negative that only the degradation can tell apart.
            other = self.degrade(jax.random.fold_in(deg_rng, 2), hr[:, 1:])[:, 0]
            key_images = jnp.concatenate([key_images, other])
        keys, key_stats = self.keys(key_params, state.batch_stats["k"], key_images, shuffle)
        if self.hard_negatives:
            keys, hard = jnp.split(keys, 2)
        lr = self.schedule(state.step)
        w = self.weights

        def loss_fn(trained):
            params = {**state.params, **trained}
            fea, out, q_stats = self.encode(params["e"], state.batch_stats["e"], query)
            logits = contrastive_logits(
                l2_normalize(out), keys, ex["queue"], self.temperature, hard=hard
            )
            terms = {
                "contrastive": info_nce(logits),
                "moco_acc": jnp.mean(jnp.argmax(logits, axis=-1) == 0),
                "l1": jnp.zeros((), jnp.float32),
            }
            if joint:
                sr = self.generator.apply({"params": params["g"]}, query, fea)
                terms["l1"] = jnp.mean(jnp.abs(sr - hr[:, 0]))
            total = w["contrastive"] * terms["contrastive"] + w["l1"] * terms["l1"]
            return total, (terms, q_stats)

        # Stage 1 differentiates the encoder only: G gets no gradient and its Adam
        # state no update, as PyTorch's Adam skips parameters whose grad is None.
        roles = ("e", "g") if joint else ("e",)
        trained = {r: state.params[r] for r in roles}
        (loss, (terms, q_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trained)
        params, opt_state = dict(state.params), dict(state.opt_state)
        for r in roles:  # one Adam state per network; lr follows the global step
            params[r], opt_state[r] = apply_updates(
                self.adam, grads[r], state.opt_state[r], params[r], lr=lr
            )
        grad_norm = optax.global_norm(grads)
        queue, ptr = enqueue(ex["queue"], ex["queue_ptr"], keys)
        ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        new = commit(
            state,
            ok,
            params=params,
            opt_state=opt_state,
            batch_stats={"e": q_stats, "k": key_stats},
            extras={"key_params": key_params, "queue": queue, "queue_ptr": ptr},
        ).replace(rng=rng)  # the degradation noise moves on even after a skipped step
        metrics = {
            "loss": loss,
            "loss_l1": terms["l1"],
            "loss_contrastive": terms["contrastive"],
            "moco_acc": terms["moco_acc"],
            "stage": jnp.asarray(2.0 if joint else 1.0),
            "lr": lr,
            "grad_norm": grad_norm,
            "nonfinite": 1.0 - ok.astype(jnp.float32),
        }
        return new, metrics

    @staticmethod
    def model_variables(raw: dict) -> dict:
        """``BlindSR`` variables from a train state (a ``TrainState`` or its restored dict)."""
        params, stats = state_field(raw, "params"), state_field(raw, "batch_stats")
        return {"params": {"E": params["e"], "G": params["g"]}, "batch_stats": {"E": stats["e"]}}

    def init_from(self, state: TrainState, name: str, kwargs: dict, variables: dict, raw=None):
        raise UserError(
            "init_from is not supported for DASR: its stage 1 trains the encoder from "
            "scratch. Resume a DASR workdir instead, or set init_from=''."
        )

    def evaluator(self, consts: dict) -> Evaluator:
        """The fixed blur (and noise) settings of paper Table 2 (or 3), one row each."""
        e = self.config.eval_degradation
        protocols = eval_degradations(
            scale=self.scale,
            sigmas=tuple(e.sigmas),
            aniso=tuple(tuple(a) for a in e.aniso),
            noises=tuple(e.noises),
            seed=int(e.seed),
            boundary=self.degradation.boundary,
        )
        return Evaluator.from_config(self.config, protocols=protocols)

    def example_batch(self, batch_size: int) -> dict:
        p = self.config.data.patch_size
        rng = np.random.default_rng(0)
        return {"gt": rng.integers(0, 256, (batch_size, 2, p, p, 3), dtype=np.uint8)}
