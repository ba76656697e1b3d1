"""ESRGAN stage 2: RRDBNet + VGG-style discriminator, RaGAN + VGG19 perceptual loss.

Wang et al., ESRGAN (ECCVW 2018), Sec. 4.1 and BasicSR's train_ESRGAN_x4.yml: G starts
from the PSNR-oriented model (``init_from``), Adam lr 1e-4 for G and D halved at
[50k, 100k, 200k, 300k], 400k steps, losses perceptual 1 (VGG19 conv5_4 before ReLU,
L1) + RaGAN 5e-3 + L1 1e-2, batch 16 of 128×128 HR patches.

Presets (``--config=configs/esrgan.py:PRESET``):
  (none)  the paper's recipe; set init_from (PSNR workdir or an imported
          RRDB_PSNR_x4 model) and vgg_weights (torchvision's vgg19-dcbb9e9d.pth).
  demo    continues the PSNR demo (workdirs/demo) for a few hundred GAN steps on the
          builtin photos with a random VGG19 (no pretrained weights here).
  tiny    seconds; for tests (random init, random VGG).
"""

from __future__ import annotations

import os
import sys

import ml_collections

try:
    from configs import esrgan_psnr
except ImportError:  # loaded by its path (jaxsr.main --config=...) from outside the repo root
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from configs import esrgan_psnr

from jaxsr.recipes import presets as parse_presets


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    presets = parse_presets(arg)
    # Same generator, data and bookkeeping fields as the PSNR stage, then the GAN parts.
    c = esrgan_psnr.get_config(
        ",".join(p for p in presets if p in ("demo", "tiny") or p.startswith("scale="))
    )
    c.task = "esrgan"  # jaxsr.tasks entry: G + D adversarial training
    c.init_from = ""  # PSNR-stage workdir or model dir to start G from ('' = random)
    c.vgg_weights = ""  # VGG19 weights (.pth from torchvision or .npz); 'random' for tests
    c.gan_type = "ragan"  # ragan | vanilla | lsgan | hinge | wgan | wgan_softplus
    # evaluation also scores NIQE (no reference), as GAN-SR papers report: MATLAB's definition
    # (float64; "basicsr" gives BasicSR's float32 numbers, up to 0.3 apart)
    c.eval_niqe = "matlab"
    c.losses = ml_collections.ConfigDict(
        {"l1": 1e-2, "perceptual": 1.0, "gan": 5e-3}
    )  # name -> weight
    c.perceptual = ml_collections.ConfigDict()
    c.perceptual.layer_weights = ml_collections.ConfigDict({"conv5_4": 1.0})  # VGG19 layers
    c.perceptual.criterion = "l1"  # l1 | l2 | fro
    c.discriminator = ml_collections.ConfigDict()
    c.discriminator.num_feat = 64  # D base width
    c.optim.lr = 1e-4  # G learning rate
    c.optim.b2 = 0.99  # BasicSR (the paper: 0.999)
    c.optim.schedule = "multistep"
    c.optim.milestones = (50_000, 100_000, 200_000, 300_000)
    c.optim_d = ml_collections.ConfigDict(c.optim.to_dict())  # D optimizer, same fields
    c.ema_decay = 0.999  # BasicSR keeps an EMA of G
    if not {"demo", "tiny"} & set(presets):
        c.num_train_steps = 400_000  # total steps of the GAN stage
    for preset in presets:
        if preset == "demo":
            c.init_from = "workdirs/demo"  # the README's PSNR demo run
            c.vgg_weights = "random"
            c.discriminator.num_feat = 16
            c.optim.lr = c.optim_d.lr = 1e-4
            c.optim.schedule = c.optim_d.schedule = "constant"
            c.ema_decay = 0.99
            c.num_train_steps = 300
            c.log_every, c.eval_every, c.checkpoint_every = 50, 0, 100
        elif preset == "tiny":
            c.vgg_weights = "random"
            # A shallow VGG layer: the same code path, a quarter of the compile time.
            c.perceptual.layer_weights = ml_collections.ConfigDict({"conv2_2": 1.0})
            c.discriminator.num_feat = 4
            c.optim.lr = c.optim_d.lr = 1e-3
            c.optim.schedule = c.optim_d.schedule = "constant"
            c.ema_decay = 0.9
            c.num_train_steps = 4
        elif not preset.startswith("scale="):
            raise ValueError(f"Unknown preset {preset!r}; choose from demo, tiny, scale=N.")
    return c
