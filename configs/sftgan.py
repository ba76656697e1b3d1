"""SFTGAN: SR conditioned on segmentation probability maps (Wang et al., CVPR 2018).

The official recipe (old BasicSR ``train_sftgan.json``, spec §5.3): G = SFT_Net
started from its PSNR-trained initialisation (``init_from``), D = ACD_VGG_BN_96 on
96×96 HR patches, batch 16; Adam lr 1e-4 for G and D, ×5 (5e-4) for every G parameter
whose name contains ``SFT`` or ``Cond``, halved at [50k, 100k, 150k, 200k], 600k
steps; losses VGG19 feature (conv5_4 before ReLU, L1) 1, vanilla GAN 5e-3, category
cross-entropy 5e-3; OST training images with stored OutdoorSceneSeg probability maps
plus 1 DIV2K background patch in 10; random rescale 1-0.5, horizontal flips.

Presets (``--config=configs/sftgan.py:PRESET``):
  (none)  the paper's recipe; set data.train.hr_dir/seg_dir/bg_dir, init_from,
          vgg_weights and a segmenter for evaluation (``package.module:function``).
  demo    the builtin photos with the *stand-in* prior (colour regions, not semantic
          classes: see jaxsr/data/seg_priors.py), a small SFT_Net, a few minutes on a
          2-core CPU.
  tiny    seconds; for tests.
"""

from __future__ import annotations

import ml_collections

from jaxsr.data.seg_priors import seg_source_config
from jaxsr.recipes import adam_config, data_config, presets, run_config, set_run_length


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = run_config("sftgan", seed=0, scale=4)

    c.model = ml_collections.ConfigDict()
    c.model.name = "sftgan"  # jaxsr.models entry (SFT_Net)
    c.model.num_feat = 64  # trunk width
    c.model.num_block = 16  # ResBlock_SFT count
    c.model.num_classes = 8  # prior channels (OutdoorSceneSeg's 8 outdoor classes)
    c.model.cond_ch = 32  # condition channels shared by the SFT layers

    c.segmenter = ""  # evaluation prior: 'builtin_clusters' | 'package.module:function'
    c.init_from = ""  # the PSNR-trained SFT_Net (workdir or model dir); '' = random
    c.vgg_weights = ""  # VGG19 weights (.pth from torchvision or .npz); 'random' for tests
    c.gan_type = "vanilla"  # SFTGAN's BCE GAN loss
    c.eval_niqe = "matlab"  # evaluation also scores NIQE (no reference; or "basicsr")
    c.losses = ml_collections.ConfigDict({"perceptual": 1.0, "gan": 5e-3, "cls": 5e-3})
    c.perceptual = ml_collections.ConfigDict()
    c.perceptual.layer_weights = ml_collections.ConfigDict({"conv5_4": 1.0})  # VGG19 layers
    c.perceptual.criterion = "l1"  # l1 | l2 | fro
    c.discriminator = ml_collections.ConfigDict()
    c.discriminator.num_feat = 64  # D base width (ACD_VGG_BN_96)

    milestones = (50_000, 100_000, 150_000, 200_000)
    c.optim = adam_config(
        lr=1e-4,  # G learning rate
        schedule="multistep",  # see jaxsr/train/optim.py
        milestones=milestones,  # lr halved at these steps
        gamma=0.5,  # decay factor
        lr_groups=(("SFT|Cond", 5.0),),  # SFT layers and CondNet at 5e-4 (official)
    )
    c.optim_d = adam_config(lr=1e-4, schedule="multistep", milestones=milestones, gamma=0.5)
    c.ema_decay = 0.0  # EMA of G weights; the official recipe keeps none

    # OST (one folder per category) with OutdoorSceneSeg maps, DIV2K as background.
    train = seg_source_config("folder", hr_dir="data/OST/img", seg_dir="data/OST/bicseg")
    train.bg_dir = "data/DIV2K/DIV2K_train_HR"
    c.data = data_config(train, patch_size=96, batch_size=16)
    c.data.rot = False  # LRHRseg_bg: horizontal flips only
    set_run_length(c, 600_000, log_every=100, eval_every=5_000, checkpoint_every=5_000)

    for preset in presets(arg):
        if preset == "demo":
            c.data.train = seg_source_config("builtin")
            c.segmenter = "builtin_clusters"
            c.model.num_feat, c.model.num_block = 32, 4
            c.discriminator.num_feat = 16
            # From scratch (no PSNR-trained init), so L1 carries the content; no
            # ImageNet VGG here, and a random one cost 2/3 of the step: perceptual off.
            c.losses = ml_collections.ConfigDict({"l1": 1.0, "gan": 5e-3, "cls": 5e-3})
            c.data.patch_size, c.data.batch_size, c.data.threads = 64, 8, 4
            c.optim.schedule, c.optim.lr, c.optim.b2 = "cosine", 1e-3, 0.99
            c.optim.warmup_steps, c.optim.decay_steps, c.optim.min_lr = 50, 2950, 1e-5
            c.optim_d.schedule = "constant"
            c.ema_decay = 0.99
            set_run_length(c, 3000, log_every=100, eval_every=1000, checkpoint_every=500)
        elif preset == "tiny":
            c.data.train = seg_source_config("builtin")
            c.data.train.max_images = 2
            c.data.eval.max_images = 1
            c.segmenter = "builtin_clusters"
            c.vgg_weights = "random"
            c.model.num_feat, c.model.num_block, c.model.cond_ch = 8, 1, 4
            c.discriminator.num_feat = 4
            c.perceptual.layer_weights = ml_collections.ConfigDict({"conv2_2": 1.0})
            c.data.patch_size, c.data.batch_size, c.data.threads = 32, 8, 2
            c.optim.lr = c.optim_d.lr = 1e-3
            set_run_length(c, 4, log_every=2, checkpoint_every=2)
        else:
            raise ValueError(f"Unknown preset {preset!r}; choose from demo, tiny.")
    return c
