"""Same-size restoration (MIRNet): denoising, low-light enhancement, SR of upsampled input.

Zamir et al., MIRNet (ECCV 2020), official ``train_denoising.py``: Charbonnier loss on
the output clamped to [0, 1], Adam with warm-up + cosine, random 8-fold dihedral
augmentation, and MixUp of (input, target) pairs from a given epoch on.

Where the input comes from (``config.restoration.kind``):

* ``noise``  — synthetic, made on device from clean patches: additive Gaussian noise
  of σ (0–255 scale; one σ per image drawn from [sigma_min, sigma_max]) and, with
  ``poisson_peak > 0``, signal-dependent Poisson noise first (Poisson-Gaussian);
  the noisy image is quantised to uint8 like a real sRGB photo.
* ``sr``     — MATLAB bicubic ×1/s then back to the HR size (MIRNet's RealSR setting
  feeds the upsampled LR image; here synthesised from HR patches).
* ``paired`` — noisy/clean (SIDD), low/normal-light (LOL) or LR↑/HR folders: the batch
  carries ``lq`` from ``data.train.lr_dir`` (same size as ``gt``, ``scale = 1``).

Evaluation uses the same synthesis with a fixed seed (RGB PSNR/SSIM, no border, as the
official denoising protocol); the baseline column is the degraded input itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsr.data.degradations import add_noise
from jaxsr.errors import UserError
from jaxsr.eval.evaluator import Evaluator
from jaxsr.eval.protocols import NoiseDegradation, UpsampledLR
from jaxsr.ops.imresize import imresize
from jaxsr.tasks.sr import SupervisedSR

KINDS = ("noise", "sr", "paired")


class Restoration(SupervisedSR):
    """Same-size restoration with pixel losses (``task = 'restore'``)."""

    def __init__(self, config):
        super().__init__(config)
        r = config.restoration
        if r.kind not in KINDS:
            raise UserError(f"Unknown restoration.kind {r.kind!r}; choose one of {KINDS}.")
        if config.scale != 1:
            raise UserError(
                "Restoration keeps the input size: set scale = 1 (sr_scale is the SR factor)."
            )
        if r.kind == "paired" and not config.data.train.get("lr_dir"):
            raise UserError(
                "restoration.kind='paired' needs data.train.lr_dir (the degraded images)."
            )
        self.kind = r.kind
        self.mixup_from = int(config.mixup_from_step)

    def lq_input(self, batch: dict, rng=None) -> jax.Array:
        if "lq" in batch:
            return batch["lq"].astype(jnp.float32) / 255.0
        gt = batch["gt"].astype(jnp.float32)
        r = self.config.restoration
        if self.kind == "sr":
            s = int(r.sr_scale)
            lr = imresize(gt, 1.0 / s, quantize=True)
            up = imresize(lr, size=gt.shape[1:3])
            return jnp.clip(jnp.floor(up + 0.5), 0, 255) / 255.0
        b = gt.shape[0]
        k_sigma, k_noise = jax.random.split(rng)
        sigma = jax.random.uniform(k_sigma, (b, 1, 1, 1), minval=r.sigma_min, maxval=r.sigma_max)
        return add_noise(k_noise, gt, sigma, float(r.poisson_peak)) / 255.0

    def prepare(self, state, batch):
        """``(gt, lq, state)`` in [0, 1] with MixUp (λ ~ Beta(1.2, 1.2) per pair) once enabled."""
        rng = jax.random.fold_in(state.rng, state.step)
        k_noise, k_perm, k_lam = jax.random.split(rng, 3)
        gt = batch["gt"].astype(jnp.float32) / 255.0
        lq = self.lq_input(batch, k_noise)
        if self.mixup_from >= 0:
            perm = jax.random.permutation(k_perm, gt.shape[0])
            lam = jax.random.beta(k_lam, 1.2, 1.2, (gt.shape[0], 1, 1, 1))
            on = state.step >= self.mixup_from
            gt = jnp.where(on, lam * gt + (1 - lam) * gt[perm], gt)
            lq = jnp.where(on, lam * lq + (1 - lam) * lq[perm], lq)
        return gt, lq, state

    def output(self, params, lq):
        # The official loss sees the output clamped to [0, 1] (no gradient outside).
        return jnp.clip(self.model.apply({"params": params}, lq), 0.0, 1.0)

    def evaluator(self, consts: dict) -> Evaluator:
        """The degraded input itself is the baseline; synthetic inputs are seeded."""
        r = self.config.restoration
        if self.kind == "noise":
            sigma, peak, seed = float(r.eval_sigma), float(r.poisson_peak), int(r.eval_seed)
            protocols = [NoiseDegradation(sigma, peak, seed)]
        elif self.kind == "sr":
            protocols = [UpsampledLR(int(r.sr_scale))]
        else:
            protocols = [None]  # paired evaluation data carry their own inputs
        return Evaluator.from_config(self.config, protocols=protocols, baseline="input")
