"""Building blocks of the recipe configs (``configs/*.py``).

Every recipe has the same run fields, Adam fields, data block and run length; they
are written once here, each field with its one-line comment, and a recipe sets only
what its paper prescribes. (They live in the installed package, not in ``configs/``,
because ml_collections loads a recipe by its file path, from any directory.)
"""

from __future__ import annotations

import ml_collections

from jaxsr.data.sources import source_config


def presets(arg: str | None) -> list[str]:
    """``'demo,scale=2'`` -> ``['demo', 'scale=2']``."""
    return [a for a in (arg or "").split(",") if a]


def run_config(task: str, *, seed: int = 0, scale: int = 4) -> ml_collections.ConfigDict:
    """A new config with the fields every run has."""
    c = ml_collections.ConfigDict()
    c.task = task  # jaxsr.tasks entry
    c.seed = seed  # model init, data order, crops and on-device degradations
    c.scale = scale  # SR factor (output size / input size)
    c.dtype = "float32"  # compute dtype; 'bfloat16' for mixed precision (params stay f32)
    c.remat = False  # rematerialise each repeated block in backprop to save memory
    c.scan_blocks = False  # RRDBNet/DASR: lax.scan over the identical trunk blocks
    c.distributed = False  # call jax.distributed.initialize() (multi-host pods/clusters)
    return c


def adam_config(**fields) -> ml_collections.ConfigDict:
    """Adam's fields (PyTorch semantics); ``fields`` adds the lr and schedule fields."""
    o = ml_collections.ConfigDict()
    o.b1 = 0.9  # Adam beta1
    o.b2 = 0.999  # Adam beta2
    o.eps = 1e-8  # Adam epsilon
    o.weight_decay = 0.0  # L2 added to the gradient (PyTorch Adam), 0 = off
    o.grad_clip = 0.0  # global-norm clip, 0 = off
    o.update(fields)
    return o


def schedule_config(**fields) -> ml_collections.ConfigDict:
    """One learning-rate schedule block (see ``jaxsr/train/optim.py``)."""
    s = ml_collections.ConfigDict()
    s.schedule = "multistep"  # 'constant' | 'multistep' | 'step' | 'cosine' | 'cosine_restarts'
    s.lr = 1e-4  # initial (peak) learning rate
    s.milestones = ()  # 'multistep': steps (within the stage) where lr *= gamma
    s.gamma = 0.5  # decay factor
    s.step_size = 1  # 'step': decay period
    s.warmup_steps = 0  # 'cosine' warm-up
    s.decay_steps = 1  # 'cosine' length after warm-up
    s.periods = (1,)  # 'cosine_restarts' periods
    s.min_lr = 0.0  # floor of the cosine schedules
    s.update(fields)
    return s


def data_config(
    train: ml_collections.ConfigDict,
    eval_: ml_collections.ConfigDict | None = None,
    *,
    patch_size,
    batch_size: int,
) -> ml_collections.ConfigDict:
    """The data block: training and evaluation sources, patch, batch and augmentation."""
    d = ml_collections.ConfigDict()
    d.train = train  # training images (see jaxsr/data/sources.py)
    d.eval = eval_ if eval_ is not None else source_config("builtin")  # evaluation set
    d.patch_size = patch_size  # HR (training target) patch side
    d.batch_size = batch_size  # global batch, split over all devices
    d.hflip = True  # random horizontal flips
    d.rot = True  # random vertical flip + transpose (with hflip: all 8 transforms)
    d.threads = 16  # grain reader threads per process
    d.workers = 0  # grain worker processes (0 = read in the main process)
    return d


def set_run_length(
    c: ml_collections.ConfigDict,
    steps: int | None,
    *,
    log_every: int = 100,
    eval_every: int = 0,
    checkpoint_every: int,
    keep_checkpoints: int = 3,
) -> None:
    """How long a run is (``steps``; ``None`` for a task that counts epochs) and how
    often it logs, evaluates and saves."""
    if steps is not None:
        c.num_train_steps = steps  # total optimizer steps
    c.log_every = log_every  # train metrics period (steps)
    c.eval_every = eval_every  # evaluation period (steps); 0 = only at the end
    c.checkpoint_every = checkpoint_every  # checkpoint period (steps)
    c.keep_checkpoints = keep_checkpoints  # newest checkpoints kept
