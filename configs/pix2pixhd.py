"""pix2pixHD: semantic label maps to photos, coarse to fine.

Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with
Conditional GANs", CVPR 2018; the official recipe (``options/*.py``,
``scripts/train_512p.sh``, ``train_1024p_24G.sh``): Cityscapes in the official layout
(``ROOT/train_label``, ``train_inst``, ``train_img``), 35 label classes, batch 1,
Adam 2e-4 (β 0.5, 0.999), LSGAN + feature matching (λ 10) + VGG (λ 10), ``niter``
epochs at constant lr then ``niter_decay`` epochs linearly to 0.

Presets (``--config=configs/pix2pixhd.py:PRESET``, comma-combinable):
  (none)   label2city_512p: global generator (ngf 64), 2-scale D, images resized to
           1024×512 (scale_width 1024), 100 + 100 epochs. Set data.train.root.
  local    label2city_1024p: LocalEnhancer (ngf 32, 1 enhancer) started from the 512p
           run (init_from, a partial load), 3-scale D, full 2048×1024 images
           (resize_or_crop none), 50 + 50 epochs, the enhancer alone for the first 10.
  feat     instance-wise features: the encoder E trained jointly (instance_feat).
  demo     the builtin photos with stand-in label maps (coarse colour-cluster regions as
           classes, their connected regions as instances; held out: the right halves of
           three photos), small networks, about 5 minutes on a 2-core CPU.
  tiny     seconds; for tests.
"""

from __future__ import annotations

import ml_collections

from jaxsr.data.label_maps import label_source_config
from jaxsr.recipes import adam_config, run_config, set_run_length
from jaxsr.recipes import presets as parse_presets


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = run_config("pix2pixhd", scale=1)  # scale: unused (label -> same-size photo)

    c.label_nc = 35  # label classes (Cityscapes labelIds: 35); 0 = label files are RGB images
    c.no_instance = False  # True: no instance maps (no edge channel)
    c.instance_feat = False  # True: train the instance feature encoder E with G
    c.max_instances = 256  # instances per image the encoder's pooling has room for

    c.model = ml_collections.ConfigDict()
    c.model.name = "pix2pixhd_global"  # 'pix2pixhd_global' (G1) | 'pix2pixhd_local' (G1+G2)
    c.model.output_nc = 3  # output channels
    c.model.ngf = 64  # G1 first-layer width
    c.model.n_downsampling = 4  # G1 stride-2 stages
    c.model.n_blocks = 9  # G1 residual blocks

    c.discriminator = ml_collections.ConfigDict()
    c.discriminator.num_D = 2  # scales (official default 2; the paper and 1024p: 3)
    c.discriminator.ndf = 64  # first-layer width
    c.discriminator.n_layers = 3  # stride-2 convs per PatchGAN

    c.encoder = ml_collections.ConfigDict()
    c.encoder.feat_num = 3  # feature channels per instance
    c.encoder.nef = 16  # first-layer width
    c.encoder.n_downsampling = 4  # stride-2 stages

    # LSGAN, feature matching (λ_feat), VGG (0 = --no_ganFeat_loss / --no_vgg_loss), and
    # pix2pix's L1 (not in pix2pixHD: off).
    c.losses = ml_collections.ConfigDict({"gan": 1.0, "feat": 10.0, "vgg": 10.0, "l1": 0.0})
    c.vgg_weights = ""  # VGG19 weights (torchvision .pth or .npz); 'random' for tests
    c.init_from = ""  # workdir or model dir to start from (partial load), '' = scratch

    c.optim = adam_config(lr=2e-4, b1=0.5, b2=0.999)  # G (+E) and D, same settings
    c.epochs = ml_collections.ConfigDict()
    c.epochs.niter = 100  # epochs at the initial lr
    c.epochs.niter_decay = 100  # epochs of linear decay to 0
    c.epochs.niter_fix_global = 0  # local G: epochs training only the outermost enhancer
    c.epochs.steps_per_epoch = 0  # 0 = training examples // batch size

    c.data = ml_collections.ConfigDict()
    c.data.train = label_source_config("folder", root="datasets/cityscapes", phase="train")
    c.data.eval = label_source_config("folder", root="datasets/cityscapes", phase="val")
    c.data.resize_or_crop = "scale_width"  # scale_width[_and_crop] | resize_and_crop | crop | none
    c.data.load_size = 1024  # width after scale_width (side after resize_and_crop)
    c.data.fine_size = 512  # crop side of the *crop modes
    c.data.hflip = True  # random horizontal flips
    c.data.batch_size = 1  # global batch, split over all devices
    c.data.threads = 4  # grain reader threads per process
    set_run_length(c, None, log_every=100, checkpoint_every=2000)

    presets = parse_presets(arg)
    for preset in presets:
        if preset == "local":
            c.model = ml_collections.ConfigDict(
                dict(
                    name="pix2pixhd_local",  # G1 + G2
                    output_nc=3,  # output channels
                    ngf=32,  # enhancer width (G1 inside uses ngf·2 = 64)
                    n_downsample_global=4,  # G1 stride-2 stages
                    n_blocks_global=9,  # G1 residual blocks
                    n_local_enhancers=1,  # enhancers (×2 resolution each)
                    n_blocks_local=3,  # residual blocks per enhancer
                )
            )
            c.discriminator.num_D = 3
            c.init_from = "workdirs/pix2pixhd_512p"
            c.data.resize_or_crop = "none"  # full 2048×1024, sizes rounded to multiples of 32
            c.epochs.niter, c.epochs.niter_decay, c.epochs.niter_fix_global = 50, 50, 10
        elif preset == "feat":
            c.instance_feat = True
        elif preset == "demo":
            c.label_nc = 8  # the builtin stand-in's colour classes
            c.data.train = label_source_config("builtin")
            c.data.eval = label_source_config("builtin")  # held-out halves of 3 photos
            c.data.resize_or_crop = "scale_width_and_crop"
            c.data.load_size, c.data.fine_size, c.data.batch_size = 128, 64, 4
            # No ImageNet VGG19 can be downloaded here, and a random one carries no
            # colour: the demo swaps the VGG term for pix2pix's L1 (λ 100) and keeps a
            # random VGG19 only for the evaluation's VGG distance. LSGAN at λ 0.5 and
            # feature matching at λ 1 rather than 1 and 10: with 15 photos the pull
            # towards the discriminator's textures cost more distance to the real photos
            # than it gave. Held-out L1 after 3000 steps (baseline 0.0695): λ 1/10 0.0694
            # (seed 0); 1/2 0.0642, 0.0695 (seeds 0, 1); 0.5/1 0.0637, 0.0617.
            c.losses = ml_collections.ConfigDict({"gan": 0.5, "feat": 1.0, "vgg": 0.0, "l1": 100.0})
            c.vgg_weights = "random"
            # Two stride-2 stages, not three: on 64-pixel crops the 8×8 bottleneck lost
            # the label maps' detail, and the smaller G runs 3× faster on a CPU.
            c.model.ngf, c.model.n_downsampling, c.model.n_blocks = 16, 2, 3
            c.discriminator.ndf = 16
            c.encoder.nef = 8
            c.epochs.niter, c.epochs.niter_decay, c.epochs.steps_per_epoch = 20, 10, 100
            c.log_every, c.checkpoint_every = 50, 500
        elif preset == "tiny":
            c.label_nc = 8
            c.data.train = label_source_config("builtin")
            c.data.eval = label_source_config("builtin")
            c.data.eval.max_images = 1
            c.data.resize_or_crop = "scale_width_and_crop"
            c.data.load_size, c.data.fine_size, c.data.batch_size = 64, 32, 8
            c.data.threads = 2
            # VGG19 to relu5_1 triples the compile time: tiny runs check the rest; the
            # VGG term is exercised by test_pix2pixhd's bf16 test and the benchmark.
            c.losses = ml_collections.ConfigDict({"gan": 1.0, "feat": 10.0, "vgg": 0.0, "l1": 1.0})
            if c.model.name == "pix2pixhd_local":
                c.model.ngf, c.model.n_blocks_global, c.model.n_blocks_local = 2, 1, 1
                c.model.n_downsample_global = 2
            else:
                c.model.ngf, c.model.n_downsampling, c.model.n_blocks = 4, 2, 1
            c.discriminator.ndf = 4
            c.encoder.nef, c.encoder.n_downsampling = 4, 2
            c.epochs.niter, c.epochs.niter_decay, c.epochs.steps_per_epoch = 1, 1, 2
            if c.epochs.niter_fix_global:
                c.epochs.niter_fix_global = 1
            c.init_from = ""
            c.log_every, c.checkpoint_every = 1, 2
        else:
            raise ValueError(
                f"Unknown preset {preset!r}; choose from local, feat, demo, tiny (combinable)."
            )
    return c
