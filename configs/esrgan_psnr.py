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


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    presets = [a for a in (arg or "").split(",") if a]
    c = ml_collections.ConfigDict()
    c.task = "sr"  # jaxsr.tasks entry: supervised SR with pixel losses
    c.seed = 0  # model init, data order and crops
    c.scale = 4  # SR factor (RRDBNet: 1, 2 or 4)
    c.dtype = "float32"  # compute dtype; 'bfloat16' for mixed precision (params stay f32)
    c.remat = False  # rematerialise each RRDB in backprop to save activation memory
    c.distributed = False  # call jax.distributed.initialize() (multi-host pods/clusters)

    c.model = ml_collections.ConfigDict()
    c.model.name = "rrdbnet"  # jaxsr.models entry
    c.model.num_feat = 64  # trunk width nf
    c.model.num_block = 23  # number of RRDBs nb
    c.model.num_grow_ch = 32  # dense growth channels gc

    c.losses = ml_collections.ConfigDict({"l1": 1.0})  # name -> weight; omitted = off

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 2e-4  # initial learning rate
    c.optim.b1 = 0.9  # Adam beta1
    c.optim.b2 = 0.999  # Adam beta2 (paper; BasicSR uses 0.99)
    c.optim.eps = 1e-8  # Adam epsilon
    c.optim.weight_decay = 0.0  # L2 added to the gradient (PyTorch Adam), 0 = off
    c.optim.schedule = "step"  # see jaxsr/train/optim.py
    c.optim.step_size = 200_000  # 'step': halve every 2e5 steps (paper)
    c.optim.gamma = 0.5  # decay factor
    c.optim.milestones = (200_000, 400_000, 600_000, 800_000)  # 'multistep' boundaries
    c.optim.warmup_steps = 0  # 'cosine' warm-up
    c.optim.decay_steps = 1_000_000  # 'cosine' length after warm-up
    c.optim.periods = (250_000, 250_000, 250_000, 250_000)  # 'cosine_restarts' (BasicSR)
    c.optim.min_lr = 1e-7  # floor of the cosine schedules
    c.optim.grad_clip = 0.0  # global-norm clip, 0 = off
    c.ema_decay = 0.0  # EMA of G weights (BasicSR: 0.999); 0 = off

    c.data = ml_collections.ConfigDict()
    c.data.train = data_source("folder", hr_dir="data/DF2K/HR")  # DIV2K 800 + Flickr2K 2650
    c.data.eval = data_source("builtin")  # periodic / final evaluation set
    c.data.patch_size = 128  # HR patch side (LR = patch / scale)
    c.data.batch_size = 16  # global batch, split over all devices
    c.data.hflip = True  # random horizontal flips
    c.data.rot = True  # random vertical flip + transpose (BasicSR "rot")
    c.data.threads = 16  # grain reader threads per process
    c.data.workers = 0  # grain worker processes (0 = read in the main process)

    c.num_train_steps = 1_000_000  # total optimizer steps
    c.log_every = 100  # train metrics period (steps)
    c.eval_every = 5_000  # evaluation period (steps); 0 = only at the end
    c.checkpoint_every = 5_000  # checkpoint period (steps)
    c.keep_checkpoints = 3  # newest checkpoints kept

    for preset in presets:
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
            c.num_train_steps = 5000
            c.log_every, c.eval_every, c.checkpoint_every = 250, 0, 1000
        elif preset == "tiny":
            c.model.num_feat, c.model.num_block, c.model.num_grow_ch = 8, 1, 4
            c.data.train = data_source("builtin")
            c.data.eval = data_source("builtin", max_images=1)
            c.data.patch_size, c.data.batch_size = 32, 8
            c.data.threads = 2
            c.optim.lr = 1e-3
            c.num_train_steps = 4
            c.log_every, c.eval_every, c.checkpoint_every = 2, 0, 2
        elif preset.startswith("scale="):
            c.scale = int(preset.split("=", 1)[1])
        else:
            raise ValueError(f"Unknown preset {preset!r}; choose from demo, tiny, scale=N.")
    return c
