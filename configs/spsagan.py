"""SPSAGAN: segmentation-prior self-attention GAN for SR (Zhang, Zheng, Hu 2020).

No code or weights were published: this recipe is jaxsr's reconstruction (spec
§5.2/§5.4; jaxsr/models/spsagan.py says what is reconstructed). Two steps:

* ``step1``: PSNR pre-training of the generator *without* SFT and SPSA (ESRGAN's
  PSNR task): L1, Adam lr 2e-4 halved every 2×10^5 steps, HR 96 / LR 24, batch 16,
  DIV2K + Flickr2K.
* step 2 (default): SPSAGAN with ``init_from`` = the step-1 run; Adam lr 5e-4 for the
  attention and conditioning modules (``SPSA``, ``SFT``, ``Cond``) and 1e-4 for the
  rest, halved every 10^5 steps; ESRGAN's losses (VGG19 conv5_4 perceptual 1, RaGAN
  5e-3, L1 1e-2) against SFTGAN's discriminator on 96×96 patches; OST (one category per
  folder, stored segmentation maps) mixed with DIV2K 10:1.

Ablation switches (the paper's table, one code path): ``model.feature_attention``,
``model.segmentation_attention``, ``model.connectivity`` ('sparse' = RRSB, 'dense' =
RRDB), ``model.sft``, ``model.spsa``.

Presets (``--config=configs/spsagan.py:PRESET``, comma-combinable with ``step1``):
  (none)  step 2 of the reconstructed recipe (set data dirs, init_from, vgg_weights and
          a segmenter ``package.module:function`` for evaluation).
  step1   step 1 of it.
  demo    the builtin photos with the *stand-in* prior (colour regions), a small
          generator; ``demo,step1`` then ``demo`` take a few minutes each on a 2-core CPU.
  tiny    seconds; for tests.
"""

from __future__ import annotations

import os
import sys

import ml_collections

try:
    from configs import esrgan_psnr, sftgan
except ImportError:  # loaded by its path (jaxsr.main --config=...) from outside the repo root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from configs import esrgan_psnr, sftgan

from jaxsr.data.sources import source_config
from jaxsr.recipes import presets as parse_presets
from jaxsr.recipes import set_run_length


def model_config() -> ml_collections.ConfigDict:
    m = ml_collections.ConfigDict()
    m.name = "spsagan"  # jaxsr.models entry (SPSAGenerator)
    m.num_feat = 64  # ESRGAN's nf
    m.num_block = 23  # trunk blocks nb
    m.num_grow_ch = 32  # growth channels gc
    m.connectivity = "sparse"  # 'sparse' = RRSB | 'dense' = RRDB | 'chain'
    m.num_classes = 8  # prior channels (OutdoorSceneSeg's 8 outdoor classes)
    m.cond_ch = 32  # SFT condition channels
    m.sft = True  # SFT conditioning after every trunk block
    m.spsa = True  # the attention layer
    m.spsa_after = -1  # trunk block it follows (-1 = the last)
    m.feature_attention = True  # SAGAN feature attention
    m.segmentation_attention = True  # attention from the class probabilities
    m.seg_weight = -1.0  # < 0: w = |β_seg − β_fea|; in [0, 1]: a fixed w
    m.renormalize = True  # rows of β renormalised to sum to 1
    m.query_block = 1024  # attention query positions per block (0 = dense)
    return m


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    presets = parse_presets(arg)
    unknown = set(presets) - {"step1", "demo", "tiny"}
    if unknown:
        raise ValueError(f"Unknown preset {sorted(unknown)}; choose from step1, demo, tiny.")
    size = [p for p in presets if p in ("demo", "tiny")]
    if "step1" in presets:
        return _step1(size)
    c = sftgan.get_config(",".join(size))
    c.task = "spsagan"  # jaxsr.tasks entry
    c.model = model_config()
    c.gan_type = "ragan"  # ESRGAN's relativistic GAN
    c.losses = ml_collections.ConfigDict({"l1": 1e-2, "perceptual": 1.0, "gan": 5e-3})
    c.optim.schedule = c.optim_d.schedule = "step"
    c.optim.step_size = c.optim_d.step_size = 100_000  # halved every 1e5 steps
    c.optim.lr_groups = (("SPSA|SFT|Cond", 5.0),)  # 5e-4 beside 1e-4
    c.data.train.bg_ratio = 11  # OST : DIV2K = 10 : 1
    c.data.rot = False
    if not size:
        set_run_length(c, 400_000, log_every=100, eval_every=5_000, checkpoint_every=5_000)
    if "demo" in size:
        c.init_from = "workdirs/spsagan_step1"  # the README's step-1 demo run
        _small(c.model)
        c.losses = ml_collections.ConfigDict({"l1": 1.0, "gan": 5e-3})  # no ImageNet VGG here
        c.data.patch_size, c.data.batch_size, c.data.threads = 64, 8, 4
        c.optim.schedule = c.optim_d.schedule = "constant"
        c.optim.lr, c.optim_d.lr = 1e-4, 1e-4
        c.ema_decay = 0.99
        set_run_length(c, 1000, log_every=100, eval_every=500, checkpoint_every=500)
    elif "tiny" in size:
        c.model.num_feat, c.model.num_block, c.model.num_grow_ch, c.model.cond_ch = 8, 1, 4, 4
        c.model.query_block = 24
    return c


def _small(m) -> None:
    m.num_feat, m.num_block, m.num_grow_ch = 32, 2, 16


def _step1(size: list) -> ml_collections.ConfigDict:
    """ESRGAN's PSNR task on the generator without SFT and SPSA."""
    c = esrgan_psnr.get_config(",".join(size))
    m = model_config()
    m.sft = m.spsa = False
    c.model = m
    c.data.patch_size = 96  # HR 96 / LR 24 (the method summary)
    if "demo" in size:
        _small(m)
        c.data.patch_size = 64
        set_run_length(c, 3000, log_every=250, checkpoint_every=1000)
        c.optim.decay_steps = 2950
    elif "tiny" in size:
        m.num_feat, m.num_block, m.num_grow_ch = 8, 1, 4
        c.data.patch_size = 32
    else:
        c.data.train = source_config("folder", hr_dir="data/DF2K/HR")
    return c
