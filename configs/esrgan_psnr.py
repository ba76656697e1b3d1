"""ESRGAN stage 1: the PSNR-oriented RRDBNet (``RRDB_PSNR_x4``), L1 loss.

Wang et al., ESRGAN (ECCVW 2018), Sec. 4.1: "we first train a PSNR-oriented model with
the L1 loss ... learning rate 2e-4, decayed by a factor of 2 every 2×10^5 mini-batch
updates", HR patches 128×128, batch 16, DIV2K + Flickr2K.

Presets (``--config=configs/esrgan_psnr.py:PRESET``):
  (none)  the paper's recipe: DF2K HR folder (LR made on the fly), 1M steps.
  demo    builtin photos, small RRDBNet, a few minutes on a 2-core CPU.
  tiny    seconds; for tests.
  scale=2 / scale=1 (comma-combinable, e.g. ``demo,scale=2``): Real-ESRGAN's
          pixel-unshuffle variants.
"""

from __future__ import annotations

import ml_collections

from jaxsr.data.sources import source_config as data_source
from jaxsr.recipes import adam_config, data_config, presets, run_config, set_run_length


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = run_config("sr", seed=0, scale=4)  # task 'sr': supervised SR with pixel losses

    c.model = ml_collections.ConfigDict()
    c.model.name = "rrdbnet"  # jaxsr.models entry
    c.model.num_feat = 64  # trunk width nf
    c.model.num_block = 23  # number of RRDBs nb
    c.model.num_grow_ch = 32  # dense growth channels gc

    c.losses = ml_collections.ConfigDict({"l1": 1.0})  # name -> weight; omitted = off

    c.optim = adam_config(
        lr=2e-4,  # initial learning rate
        schedule="step",  # see jaxsr/train/optim.py
        step_size=200_000,  # 'step': halve every 2e5 steps (paper)
        gamma=0.5,  # decay factor
        milestones=(200_000, 400_000, 600_000, 800_000),  # 'multistep' boundaries
        warmup_steps=0,  # 'cosine' warm-up
        decay_steps=1_000_000,  # 'cosine' length after warm-up
        periods=(250_000, 250_000, 250_000, 250_000),  # 'cosine_restarts' (BasicSR)
        min_lr=1e-7,  # floor of the cosine schedules
    )  # Adam beta2 0.999 as the paper (BasicSR uses 0.99)
    c.ema_decay = 0.0  # EMA of G weights (BasicSR: 0.999); 0 = off

    # DIV2K 800 + Flickr2K 2650 HR images; evaluation on the builtin photos.
    c.data = data_config(
        data_source("folder", hr_dir="data/DF2K/HR"), patch_size=128, batch_size=16
    )
    set_run_length(c, 1_000_000, log_every=100, eval_every=5_000, checkpoint_every=5_000)

    for preset in presets(arg):
        if preset == "demo":
            # About 7 minutes on a 2-core CPU: a narrow RRDBNet (one RRDB) on 64-pixel
            # patches of the builtin photos; a high lr with warm-up + cosine decay, Adam
            # beta2 0.99 (BasicSR) and EMA weights. Measured: +0.63 dB PSNR-Y over
            # bicubic on the builtin eval photos (lr 3e-3 and above diverged).
            c.model.num_feat, c.model.num_block, c.model.num_grow_ch = 32, 1, 16
            c.data.train = data_source("builtin")
            c.data.patch_size, c.data.batch_size = 64, 8
            c.optim.lr, c.optim.b2, c.optim.schedule = 2e-3, 0.99, "cosine"
            c.optim.warmup_steps, c.optim.decay_steps, c.optim.min_lr = 50, 4950, 1e-5
            c.ema_decay = 0.99
            set_run_length(c, 5000, log_every=250, checkpoint_every=1000)
        elif preset == "tiny":
            c.model.num_feat, c.model.num_block, c.model.num_grow_ch = 8, 1, 4
            c.data.train = data_source("builtin")
            c.data.eval = data_source("builtin", max_images=1)
            c.data.patch_size, c.data.batch_size = 32, 8
            c.data.threads = 2
            c.optim.lr = 1e-3
            set_run_length(c, 4, log_every=2, checkpoint_every=2)
        elif preset.startswith("scale="):
            c.scale = int(preset.split("=", 1)[1])
        else:
            raise ValueError(f"Unknown preset {preset!r}; choose from demo, tiny, scale=N.")
    return c
