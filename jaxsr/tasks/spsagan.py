"""SPSAGAN step 2: the segmentation-prior self-attention generator trained adversarially.

Zhang, Zheng, Hu (arXiv 2003.03489), a documented reconstruction (spec §5.2/§5.4,
``jaxsr.models.spsagan``). The step is SFTGAN's (``jaxsr.tasks.sftgan``: HR patches
with their class probabilities, LR made on device, VGG19 perceptual + GAN terms
against the auxiliary-classifier discriminator on 96×96 patches), with ESRGAN's
relativistic GAN loss and the SPSA/SFT/CondNet parameters at 5× the learning rate.

Step 1 is ESRGAN's PSNR task (``task = 'sr'``) on the same generator without SFT and
SPSA; ``init_from`` then loads those weights by name and leaves the new modules at
their initialisation (γ = 0: SPSA starts as an identity). Evaluation logs, beside
PSNR/SSIM/NIQE, what four query pixels of the first image attend to.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxsr.errors import UserError
from jaxsr.tasks.sftgan import SFTGAN
from jaxsr.train.state import TrainState
from jaxsr.trees import flatten_paths, nest


def attention_image(beta) -> jax.Array:
    """``(B, 4, h, w)`` attention rows -> one ``(1, h, 4·w, 1)`` uint8 strip of the first
    image, each map scaled by its own maximum."""
    maps = beta[0] / jnp.maximum(beta[0].max(axis=(1, 2), keepdims=True), 1e-12)
    strip = jnp.concatenate(list(maps), axis=1)
    return jnp.round(strip * 255).astype(jnp.uint8)[None, ..., None]


class SPSAGAN(SFTGAN):
    """``task = 'spsagan'`` (model ``spsagan``)."""

    def init_from(self, state: TrainState, name: str, kwargs: dict, variables: dict, raw=None):
        """Start G from step 1 (an ``spsagan`` without SFT/SPSA, or an ESRGAN ``rrdbnet``
        with the same trunk): every tensor of ``variables`` must exist here with its
        shape; the parameters it lacks (SFT, CondNet, SPSA) keep their initialisation."""
        if name not in ("spsagan", "rrdbnet"):
            raise UserError(
                f"init_from={self.config.init_from!r} holds a {name}; SPSAGAN starts from its "
                "step 1 (configs/spsagan.py:step1) or an ESRGAN RRDBNet of the same size."
            )
        old = flatten_paths(jax.tree.map(np.asarray, state.params["g"]))
        new = flatten_paths(variables["params"])
        bad = ["/".join(p) for p, v in new.items() if p not in old or np.shape(v) != old[p].shape]
        if bad:
            raise UserError(
                f"init_from={self.config.init_from!r} has {len(bad)} tensor(s) this generator "
                f"lacks or shapes differently (first: {bad[0]}); match num_feat, num_block, "
                "num_grow_ch and connectivity to step 1."
            )
        merged = {p: np.asarray(new.get(p, v), v.dtype) for p, v in old.items()}
        fresh = sorted({p[0] for p in old if p not in new})
        logging.info(
            "init_from: %d of %d generator tensors loaded; initialised: %s",
            len(new),
            len(old),
            ", ".join(fresh) or "none",
        )
        params = jax.device_put(nest(merged), jax.tree.leaves(state.params["g"])[0].sharding)
        return state.replace(
            params={**state.params, "g": params},
            ema=jax.tree.map(jnp.copy, params) if state.ema is not None else None,
        )

    @classmethod
    def graph(cls, module, variables, config=None):
        """SFTGAN's graph, with SPSA's attention as one dense block: blocks of queries
        need a static number of positions, an exported graph has symbolic ones (so its
        memory grows with the square of the LR pixels: feed it tiles)."""
        return super().graph(module.clone(query_block=0), variables, config)

    def predict(self, variables: dict, batch: dict):
        """SR, and with SPSA on ``(SR, {'attention': strip})`` (see ``attention_image``)."""
        if not self.model.spsa:
            return super().predict(variables, batch)
        out, inter = self.model.apply(
            variables, batch["lq"], batch["seg"], mutable=["intermediates"]
        )
        return out, {"attention": attention_image(inter["intermediates"]["SPSA"]["attention"][0])}
