"""SFTGAN: segmentation-conditioned SR against an auxiliary-classifier discriminator.

Wang et al., SFTGAN (CVPR 2018), trained as the old BasicSR ``SFTGAN_ACD_model``
(spec §5.3). One jitted step updates both networks on a batch of HR patches, their
HR-size class probabilities and category labels (``jaxsr.data.seg_priors``):

* G (D frozen): ``w_percep·L1(φ(SR), φ(HR)) + w_gan·BCE(D(SR), 1) + w_cls·CE(D_cls(SR), c)``
  with φ = VGG19 ``conv5_4`` before its ReLU, the LR made from HR on device (MATLAB
  bicubic) and the prior fed at HR size;
* D on the same detached SR: ``BCE(D(HR), 1) + BCE(D(SR), 0) + CE(D_cls(HR), c) +
  CE(D_cls(SR), c)``; the cross-entropies ignore category 0 (background).

G's parameters whose path matches ``SFT`` or ``Cond`` train at 5× the learning rate
(``optim.lr_groups``), as the official recipe. Evaluation runs the configured
segmenter on each LR input to make the prior, as SFTGAN's test script does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.data.seg_priors import (
    check_seg_source_config,
    load_segmenter,
    seg_prior_dataset,
    segment,
)
from jaxsr.data.sources import check_source_config
from jaxsr.errors import UserError
from jaxsr.eval.evaluator import Evaluator
from jaxsr.losses.gan import (
    auxiliary_classifier_loss,
    gan_loss,
    ragan_discriminator_losses,
    ragan_generator_loss,
)
from jaxsr.losses.pixel import PIXEL_LOSSES
from jaxsr.models.sftgan import ACDDiscriminator
from jaxsr.ops.color import to_uint8
from jaxsr.tasks.esrgan import ESRGAN
from jaxsr.tasks.signature import GraphInput, GraphSignature
from jaxsr.tasks.sr import bicubic_degrade
from jaxsr.train.state import TrainState


class SFTGAN(ESRGAN):
    """``task = 'sftgan'``: ESRGAN's step with the prior as a second G input and the
    discriminator's category head (``losses.cls``). ``gan_type`` 'vanilla' is SFTGAN's;
    'ragan' (ESRGAN's relativistic loss) is what SPSAGAN's recipe uses."""

    losses = (*PIXEL_LOSSES, "perceptual", "gan", "cls")

    def __init__(self, config):
        super().__init__(config)
        self.disc = ACDDiscriminator(
            num_feat=config.discriminator.num_feat,
            input_size=config.data.patch_size,
            num_classes=config.model.num_classes,
            dtype=jnp.dtype(config.dtype),
        )
        self.num_classes = int(config.model.num_classes)
        self.segmenter = load_segmenter(config.segmenter) if config.segmenter else None

    @classmethod
    def check_config(cls, config) -> None:
        check_seg_source_config(config.data.train, "data.train")
        check_source_config(config.data.eval, "data.eval")
        if not config.get("segmenter"):
            raise UserError(
                "SFTGAN evaluates on priors made from each LR input: set --config.segmenter "
                "to 'package.module:function' (a wrapper of your segmentation network, "
                "LR uint8 HxWx3 -> HR-size probabilities) or 'builtin_clusters' (the demo's "
                "stand-in)."
            )

    def train_data(self, process_index: int = 0, process_count: int = 1):
        return seg_prior_dataset(
            self.config,
            self.segmenter,
            process_index=process_index,
            process_count=process_count,
        )

    def example_batch(self, batch_size: int) -> dict:
        p, k = self.config.data.patch_size, self.num_classes
        rng = np.random.default_rng(0)
        seg = rng.dirichlet(np.ones(k), (batch_size, p, p)).astype(np.float32)
        return {
            "gt": rng.integers(0, 256, (batch_size, p, p, 3), dtype=np.uint8),
            "seg": seg,
            "category": rng.integers(0, k, (batch_size,)).astype(np.int32),
        }

    def init(self, rng: jax.Array) -> TrainState:
        g_rng, d_rng, rng = jax.random.split(rng, 3)
        p = self.config.data.patch_size
        lp = p // self.scale
        g_params = self.model.init(
            g_rng, jnp.zeros((1, lp, lp, 3)), jnp.zeros((1, p, p, self.num_classes))
        )["params"]
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

    def inputs(self, batch: dict) -> dict:
        return {
            "lq": bicubic_degrade(batch["gt"], self.scale),
            "seg": batch["seg"].astype(jnp.float32),
            "category": batch["category"],
        }

    def generate(self, g_params, inputs: dict):
        return self.model.apply({"params": g_params}, inputs["lq"], inputs["seg"])

    def generator_loss(self, g_params, d_params, d_stats, inputs, gt, consts):
        sr = self.generate(g_params, inputs)
        terms = self.content_terms(sr, gt, consts)
        w = self.weights
        if "gan" in w or "cls" in w:
            if self.gan_type == "ragan":  # relativistic: D's view of HR too (ESRGAN)
                (real, _), d_stats = self._d(d_params, d_stats, gt)
            (fake, cls), d_stats = self._d(d_params, d_stats, sr)
            if "gan" in w:
                terms["gan_g"] = w["gan"] * (
                    ragan_generator_loss(real, fake)
                    if self.gan_type == "ragan"
                    else gan_loss(self.gan_type, fake, True)
                )
            if "cls" in w:
                terms["cls_g"] = w["cls"] * auxiliary_classifier_loss(cls, inputs["category"])
        return sum(terms.values()), (terms, sr, d_stats)

    def discriminator_loss(self, d_params, d_stats, sr, gt, inputs):
        (real, cls_real), d_stats = self._d(d_params, d_stats, gt)
        (fake, cls_fake), d_stats = self._d(d_params, d_stats, jax.lax.stop_gradient(sr))
        if self.gan_type == "ragan":
            parts = dict(zip(("real", "fake"), ragan_discriminator_losses(real, fake), strict=True))
        else:
            parts = {
                "real": gan_loss(self.gan_type, real, True, is_disc=True),
                "fake": gan_loss(self.gan_type, fake, False, is_disc=True),
            }
        if "cls" in self.weights:  # the category head trains when G is judged by it
            c = inputs["category"]
            parts["cls_real"] = auxiliary_classifier_loss(cls_real, c)
            parts["cls_fake"] = auxiliary_classifier_loss(cls_fake, c)
        return sum(parts.values()), (parts, jnp.mean(real), jnp.mean(fake), d_stats)

    image_to_image = False  # predict takes {'lq', 'seg'}

    @classmethod
    def predictor(cls, module, variables, *, ensemble: bool = False, segmenter: str = ""):
        """The segmentation prior of each LR image from ``segmenter`` (made on the host,
        as SFTGAN's test script segments the LR), then the network."""
        if not module.needs_prior:  # an SPSAGAN ablation without SFT and SPSA
            return super().predictor(module, variables, ensemble=ensemble)
        if not segmenter:
            raise UserError(
                "This model is conditioned on a segmentation prior; add "
                "--segmenter=builtin_clusters (the demo's stand-in) or "
                "--segmenter=package.module:function (your segmentation network)."
            )
        if ensemble:
            raise UserError("--self_ensemble is not supported for prior-conditioned models.")
        fn, apply = load_segmenter(segmenter), jax.jit(module.apply)

        def predict(lq):
            prior = segment(fn, to_uint8(np.asarray(lq)[0]), module.scale, module.num_classes)
            return apply(variables, lq, prior[None])

        return predict

    @classmethod
    def graph(cls, module, variables, config=None) -> GraphSignature:
        """The image and its prior (``prior``: HR-size class probabilities, ×scale the
        image's sides) in, the SR image out: the segmentation network stays outside."""
        if not module.needs_prior:
            return super().graph(module, variables, config)

        def fn(lq, prior):
            return jnp.clip(module.apply(variables, lq, prior), 0.0, 1.0)

        prior = GraphInput("prior", module.num_classes, size_factor=module.scale)
        return GraphSignature((GraphInput("input"), prior), fn, module.scale)

    @classmethod
    def tile_predictor(cls, module, variables, *, ensemble: bool = False):
        if not module.needs_prior:
            return super().tile_predictor(module, variables, ensemble=ensemble)
        raise UserError(
            "This model is conditioned on a segmentation prior (SFTGAN/SPSAGAN), which tiled "
            "upscaling does not feed yet; use jaxsr.evaluate --segmenter=... or call the "
            "model with its prior from Python."
        )

    def predict(self, variables: dict, batch: dict) -> jax.Array:
        """``{'lq': LR float [0, 1], 'seg': HR-size prior}`` -> SR (see ``eval_inputs``)."""
        return self.model.apply(variables, batch["lq"], batch["seg"])

    def eval_inputs(self, lq) -> dict:
        """The evaluator's LR batch ``(1, h, w, 3)`` and its prior from the segmenter, made
        on the host from the uint8 LR image, as SFTGAN's test script segments the LR."""
        lr = to_uint8(np.asarray(lq)[0])
        prior = segment(self.segmenter, lr, self.scale, self.num_classes)
        return {"lq": np.asarray(lq, np.float32), "seg": prior[None]}

    def evaluator(self, consts: dict) -> Evaluator:
        return Evaluator.from_config(
            self.config, extra=self._perceptual_metric(consts), inputs=self.eval_inputs
        )
