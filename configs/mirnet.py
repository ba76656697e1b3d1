"""MIRNet: real image denoising, low-light enhancement and super-resolution.

Zamir et al., "Learning Enriched Features for Real Image Restoration and Enhancement",
ECCV 2020; the official denoising recipe (``training.yml``, ``train_denoising.py``):
SIDD sRGB patch pairs, random 128² crops with the 8 dihedral transforms, batch 16,
Charbonnier loss (ε = 1e-3) on the clamped output, Adam 2e-4 (weight decay 1e-8),
3 warm-up epochs then cosine to 1e-6 over 57 epochs, MixUp from epoch 6.

Presets (``--config=configs/mirnet.py:PRESET``, comma-combinable):
  denoise  (the default) SIDD: data/SIDD/train/{input,groundtruth}, same file names.
  enhance  LOL low-light enhancement: data/LOL/our485/{low,high}, eval15 for eval.
  sr       RealSR ×4 (LR already at the HR size): data/RealSR/x4/train/{LR,HR}.
  demo     synthetic Gaussian noise σ = 25 on the builtin photos, a narrow MIRNet,
           a few minutes on a 2-core CPU; prints PSNR against the noisy input.
  tiny     seconds; for tests.
"""

from __future__ import annotations

import ml_collections

from jaxsr.data.sources import source_config as data_source
from jaxsr.recipes import (
    adam_config,
    data_config,
    run_config,
    schedule_config,
    set_run_length,
)
from jaxsr.recipes import presets as parse_presets

EPOCH = 6000  # SIDD: 320 images × 300 patches // batch 16


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    # Task 'restore': same-size restoration (scale 1: MIRNet restores at the input size).
    c = run_config("restore", seed=0, scale=1)

    c.model = ml_collections.ConfigDict()
    c.model.name = "mirnet"  # jaxsr.models entry
    c.model.n_feat = 64  # full-resolution stream width (streams: 64, 128, 256)
    c.model.n_rrg = 3  # recursive residual groups
    c.model.n_mrb = 2  # multi-scale residual blocks per group
    c.model.height = 3  # resolution streams per block

    c.restoration = ml_collections.ConfigDict()
    c.restoration.kind = "paired"  # 'paired' folders, or synthetic 'noise' / 'sr'
    c.restoration.sigma_min = 25.0  # 'noise': σ per image ~ U[sigma_min, sigma_max] (0-255)
    c.restoration.sigma_max = 25.0
    c.restoration.poisson_peak = 0.0  # 'noise': Poisson noise first (photons at white), 0 = off
    c.restoration.eval_sigma = 25.0  # 'noise': evaluation σ
    c.restoration.eval_seed = 0  # 'noise': evaluation noise seed
    c.restoration.sr_scale = 4  # 'sr': bicubic factor of the synthetic LR (then upsampled)

    c.losses = ml_collections.ConfigDict({"charbonnier": 1.0})  # name -> weight

    # Adam 2e-4, weight decay 1e-8 (official); 3 warm-up epochs, then cosine to 1e-6
    # over the remaining 57 (GradualWarmupScheduler + CosineAnnealing).
    c.optim = adam_config(
        weight_decay=1e-8,
        **schedule_config(
            schedule="cosine",
            lr=2e-4,
            warmup_steps=3 * EPOCH,
            decay_steps=57 * EPOCH,
            min_lr=1e-6,
        ),
    )
    c.ema_decay = 0.0  # EMA of the weights, 0 = off (official: off)
    c.mixup_from_step = 5 * EPOCH  # MixUp of (input, target) pairs from epoch 6; -1 = off

    c.data = data_config(
        data_source("folder", hr_dir="data/SIDD/train/groundtruth", lr_dir="data/SIDD/train/input"),
        data_source("folder", hr_dir="data/SIDD/val/groundtruth", lr_dir="data/SIDD/val/input"),
        patch_size=128,
        batch_size=16,
    )

    c.eval_rgb = True  # official protocol: PSNR/SSIM on RGB ...
    c.eval_crop_border = 0  # ... without a border crop

    set_run_length(c, 60 * EPOCH, eval_every=EPOCH, checkpoint_every=EPOCH // 2)

    for preset in parse_presets(arg):
        if preset == "denoise":
            pass  # the default recipe
        elif preset == "enhance":
            c.data.train = data_source(
                "folder", hr_dir="data/LOL/our485/high", lr_dir="data/LOL/our485/low"
            )
            c.data.eval = data_source(
                "folder", hr_dir="data/LOL/eval15/high", lr_dir="data/LOL/eval15/low"
            )
        elif preset == "sr":
            c.data.train = data_source(
                "folder", hr_dir="data/RealSR/x4/train/HR", lr_dir="data/RealSR/x4/train/LR"
            )
            c.data.eval = data_source(
                "folder", hr_dir="data/RealSR/x4/test/HR", lr_dir="data/RealSR/x4/test/LR"
            )
        elif preset == "demo":
            # A narrow MIRNet (one RRG of one MRB, 16/32/64 channels) denoising σ = 25
            # Gaussian noise on 64² crops of the builtin photos.
            c.model.n_feat, c.model.n_rrg, c.model.n_mrb = 16, 1, 1
            c.restoration.kind = "noise"
            c.data.train = data_source("builtin")
            c.data.eval = data_source("builtin")
            c.data.patch_size, c.data.batch_size = 64, 8
            c.optim.lr, c.optim.warmup_steps, c.optim.decay_steps = 1e-3, 50, 1450
            c.mixup_from_step = -1
            set_run_length(c, 1500, log_every=250, checkpoint_every=500)
        elif preset == "tiny":
            c.model.n_feat, c.model.n_rrg, c.model.n_mrb, c.model.height = 8, 1, 1, 2
            c.restoration.kind = "noise"
            c.data.train = data_source("builtin")
            c.data.eval = data_source("builtin", max_images=1)
            c.data.patch_size, c.data.batch_size = 16, 8
            c.data.threads = 2
            c.optim.lr, c.optim.warmup_steps, c.optim.decay_steps = 1e-3, 1, 3
            c.mixup_from_step = 2
            set_run_length(c, 4, log_every=2, checkpoint_every=2)
        else:
            raise ValueError(
                f"Unknown preset {preset!r}; choose from denoise, enhance, sr, demo, tiny."
            )
    return c
