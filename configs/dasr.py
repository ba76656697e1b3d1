"""DASR: blind super-resolution with an unsupervised degradation representation.

Wang et al., "Unsupervised Degradation Representation Learning for Blind
Super-Resolution", CVPR 2021; the official recipe (``main.sh``, ``option.py``):
DF2K HR images, two 48×48 LR patches per image (query and key, same degradation),
batch 32, Gaussian blur kernels drawn per image, 600 epochs of ~970 iterations:
epochs 1–100 train the degradation encoder alone (InfoNCE, lr 1e-3 → 1e-4 at epoch
60), epochs 101–600 train encoder and SR network jointly (L1 + InfoNCE, lr 1e-4
halved every 125 epochs).

Presets (``--config=configs/dasr.py:PRESET``, comma-combinable):
  (none)   paper ×4, isotropic kernels σ ∈ [0.2, 4], noise-free (Table 2 model).
  aniso    anisotropic kernels λ1, λ2 ∈ [0.2, 4], θ ∈ [0, π), noise σ_n ∈ [0, 25]
           (Table 3 model); evaluated on the nine Table 3 kernels at noise 0/5/10.
  scale=N  ×2, ×3 or ×4 (σ range [0.2, N], the paper's per-scale kernel widths).
  demo     builtin photos, narrow networks, both stages in minutes on a 2-core CPU.
  tiny     seconds; for tests.
"""

from __future__ import annotations

import ml_collections

from jaxsr.data.degradations import PAPER_ANISO_KERNELS
from jaxsr.data.sources import source_config as data_source
from jaxsr.recipes import (
    adam_config,
    data_config,
    run_config,
    schedule_config,
    set_run_length,
)
from jaxsr.recipes import presets as parse_presets

EPOCH = 970  # iterations per official epoch: 3450 images × 9 repeats // batch 32


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = run_config("dasr", seed=1, scale=4)  # seed 1 as the official code; ×2, ×3 or ×4

    c.model = ml_collections.ConfigDict()
    c.model.name = "dasr"  # jaxsr.models entry (BlindSR = encoder + DASR network)
    c.model.n_feats = 64  # SR network width
    c.model.n_groups = 5  # degradation-aware groups (DAG)
    c.model.n_blocks = 5  # DA blocks per group
    c.model.reduction = 8  # channel-attention reduction
    c.model.encoder_widths = (64, 64, 128, 128, 256, 256)  # encoder convs; last = embedding

    c.degradation = ml_collections.ConfigDict()
    c.degradation.mode = "iso"  # 'iso' (σ) or 'aniso' (λ1, λ2, θ) Gaussian kernels
    c.degradation.kernel_size = 21  # blur kernel side
    c.degradation.sig_min = 0.2  # isotropic σ ~ U[sig_min, sig_max]
    c.degradation.sig_max = c.get_ref("scale") * 1.0  # paper: 2 / 3 / 4 for ×2 / ×3 / ×4
    c.degradation.lambda_min = 0.2  # anisotropic λ1, λ2 ~ U[lambda_min, lambda_max]
    c.degradation.lambda_max = 4.0
    c.degradation.noise = 0.0  # per-image noise σ_n ~ U[0, noise], 0–255 scale
    c.degradation.boundary = "edge"  # bicubic border: 'edge' (DASR code) or 'symmetric' (MATLAB)

    c.moco = ml_collections.ConfigDict()
    c.moco.queue_size = 8192  # K negatives (a multiple of the global batch)
    c.moco.momentum = 0.999  # key encoder <- m * key + (1 - m) * query encoder
    c.moco.temperature = 0.07  # InfoNCE temperature T
    # Where the key patch comes from: 'same_image' (the paper: another patch of the
    # query's image) or 'other_image' (a patch of the next image in the batch, under the
    # query's degradation: only the degradation is shared; see jaxsr.embedding's study).
    c.moco.key_patch = "same_image"
    # BatchNorm groups: 1 = statistics over the whole batch (the official code); G > 1 =
    # MoCo's shuffling BN: G groups, the keys shuffled across them, so that the batch
    # statistics a query and its key share cannot identify the positive.
    c.moco.bn_groups = 1
    # Not in the paper: also contrast each query with its image's key patch under a
    # kernel drawn anew (a negative with the positive's content, another degradation).
    c.moco.hard_negatives = False

    c.losses = ml_collections.ConfigDict({"l1": 1.0, "contrastive": 1.0})  # L1 in 0–255 units

    c.stages = ml_collections.ConfigDict()
    c.stages.encoder_steps = 100 * EPOCH  # stage 1: encoder only; then joint training

    c.optim = adam_config()  # one Adam per network; the lr follows the stage schedules
    # Stage 1 lr 1e-3 * 0.1^(epoch // 60): the drop comes at the start of epoch 60.
    c.optim.encoder = schedule_config(lr=1e-3, milestones=(59 * EPOCH,), gamma=0.1)
    # Stage 2 lr 1e-4 * 0.5^((epoch - 100) // 125): halved from epochs 225, 350, 475, 600.
    c.optim.sr = schedule_config(
        lr=1e-4, milestones=(124 * EPOCH, 249 * EPOCH, 374 * EPOCH, 499 * EPOCH), gamma=0.5
    )

    # DIV2K 800 + Flickr2K 2650; HR patch = scale × 48 (LR patch 48); batch 32 images.
    c.data = data_config(
        data_source("folder", hr_dir="data/DF2K/HR"),
        patch_size=c.get_ref("scale") * 48,
        batch_size=32,
    )
    c.data.num_patches = 2  # patches per image: query and key (64 patches per batch)

    c.eval_degradation = ml_collections.ConfigDict()
    c.eval_degradation.sigmas = ()  # isotropic widths; () = paper Table 2 for the scale
    c.eval_degradation.aniso = ()  # (λ1, λ2, θ in degrees) kernels (Table 3)
    c.eval_degradation.noises = (0.0,)  # noise levels, each combined with every kernel
    c.eval_degradation.seed = 0  # noise seed (the noise is random unless seeded)

    # 600 epochs over both stages.
    set_run_length(c, 600 * EPOCH, eval_every=25 * EPOCH, checkpoint_every=EPOCH)

    for preset in parse_presets(arg):
        if preset == "aniso":
            c.degradation.mode = "aniso"
            c.degradation.noise = 25.0
            c.eval_degradation.aniso = PAPER_ANISO_KERNELS
            c.eval_degradation.noises = (0.0, 5.0, 10.0)
        elif preset == "demo":
            # About 10 minutes on a 2-core CPU: narrow encoder and SR network, 24-pixel
            # LR patches of the builtin photos, 400 encoder-only steps, then a cosine
            # stage 2 at a high lr with Adam beta2 0.99. lr 5e-4 and 3000 steps stayed
            # below bicubic at σ = 0 and 1.2 (-0.37 / -0.05 dB).
            c.model.n_feats, c.model.n_groups, c.model.n_blocks = 32, 2, 2
            c.model.encoder_widths = (32, 32, 64, 64, 128, 128)
            c.data.train = data_source("builtin")
            c.data.patch_size = c.get_ref("scale") * 24
            c.data.batch_size = 8
            c.moco.queue_size = 256
            c.stages.encoder_steps = 400
            c.optim.b2 = 0.99
            c.optim.encoder = schedule_config(lr=1e-3, milestones=(300,), gamma=0.1)
            c.optim.sr = schedule_config(
                schedule="cosine", lr=1.5e-3, warmup_steps=50, decay_steps=3550, min_lr=1e-5
            )
            set_run_length(c, 4000, log_every=200, checkpoint_every=1000)
        elif preset == "study":
            # Stage 1 alone (the encoder), scaled to a CPU hour: the paper's LR patch 48,
            # queue and temperature, a narrower encoder and fewer steps. The training
            # folder is set by `python -m jaxsr.embedding` (its held-out split stays out).
            c.model.encoder_widths = (32, 32, 64, 64, 128, 128)
            c.data.train = data_source("folder", hr_dir="")
            c.data.eval = data_source("builtin", max_images=1)  # the loop's SR check only
            c.data.batch_size = 32
            c.data.threads = 4
            c.eval_degradation.sigmas = (2.0,)
            steps = 6000
            c.stages.encoder_steps = steps  # no stage 2: the SR network is not trained
            c.optim.encoder = schedule_config(lr=1e-3, milestones=(int(steps * 0.6),), gamma=0.1)
            set_run_length(c, steps, log_every=250, checkpoint_every=1000, keep_checkpoints=1)
        elif preset == "tiny":
            c.model.n_feats, c.model.n_groups, c.model.n_blocks = 8, 1, 1
            c.model.encoder_widths = (8, 8, 16, 16, 16, 16)
            c.data.train = data_source("builtin")
            c.data.eval = data_source("builtin", max_images=1)
            c.data.patch_size = c.get_ref("scale") * 12
            c.data.batch_size = 8
            c.data.threads = 2
            c.moco.queue_size = 32
            c.stages.encoder_steps = 2
            c.optim.encoder = schedule_config(lr=1e-3)
            c.optim.sr = schedule_config(lr=1e-3)
            c.eval_degradation.sigmas = (0.0, 2.0)
            set_run_length(c, 4, log_every=2, checkpoint_every=2)
        elif preset.startswith("scale="):
            c.scale = int(preset.split("=", 1)[1])
        else:
            raise ValueError(f"Unknown preset {preset!r}; choose from aniso, demo, tiny, scale=N.")
    return c
