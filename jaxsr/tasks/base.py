"""The task contract: what a method provides so that the loop, the CLIs and the
benchmark can train, evaluate and export it without knowing anything else about it.

A task wires models, losses and degradations into pure functions. The training loop
(``jaxsr.train.loop``) calls, in order::

    cls = methods.task_class(config.task)        # the registered class (jaxsr.methods)
    cls.check_config(config)                     # values checked before anything is written
    task = cls(config)                           # build (no arrays yet)
    consts = task.constants()                    # frozen arrays (VGG weights ...)
    data = task.train_data(process_index, process_count)   # grain iterator of this process
    state = task.init(rng)                       # a TrainState
    state = task.init_from(state, name, kwargs, variables, raw)  # with config.init_from
    for first_step, step_fn in task.phases():    # one compiled step per phase, until
                                                 # task.num_train_steps()
        state, metrics = step_fn(state, batch, consts)  # metrics include 'lr', 'nonfinite'
    evaluator = task.evaluator(consts)           # eval set, protocols, metric names, table
    evaluator.run(lambda lq: task.predict(task.eval_variables(state), lq))

``model_spec`` / ``model_variables`` describe the network a run exports (what
``jaxsr.load_model`` rebuilds from a workdir); ``example_batch`` feeds the benchmark.
The CLIs ask the task, never the method's name: ``image_to_image`` (an LR image in, an
image out: evaluation, upscaling, the contract tests), ``blind`` (evaluate under the
paper's degradation protocols), ``predictor`` / ``tile_predictor`` (how ``evaluate``
and ``upscale`` feed the network, e.g. SFTGAN's segmentation prior).

:class:`Task` gives every method but ``init`` and ``train_step`` a default that fits
a single-generator SR task; a method overrides what it does differently. **A new
method adds** its network(s) in ``jaxsr/models/``, its losses in ``jaxsr/losses/`` (if
new ones), a task class here in ``jaxsr/tasks/``, its recipe in ``configs/``, optionally
a converter ``architecture(state_dict)`` in ``jaxsr/convert/`` and PyTorch reference
steps in ``benchmarks/torch_reference.py``, a page in ``docs/methods/``, and **one**
:class:`jaxsr.methods.Method` entry (or a ``register`` call in a plugin module named by
``$JAXSR_METHODS``); nothing in the loop, the CLIs or the tests' lists
(``tests/test_methods.py`` trains, evaluates, upscales, converts and benchmarks such a
method from a package of its own).
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import methods
from jaxsr.data.pipeline import train_dataset
from jaxsr.data.sources import check_source_config
from jaxsr.errors import UserError
from jaxsr.eval.evaluator import Evaluator
from jaxsr.models import build_model
from jaxsr.ops.ensemble import self_ensemble
from jaxsr.ops.padding import at_any_size
from jaxsr.tasks.signature import GraphSignature, image_graph
from jaxsr.train.state import TrainState, state_field


def model_spec(config) -> tuple[str, dict]:
    """The registry name and constructor kwargs of a config's generator (``config.model``
    plus the scale; the compute dtype and remat are run options, not part of it)."""
    kwargs = dict(config.model)
    name = kwargs.pop("name")
    kwargs["scale"] = config.scale
    return name, kwargs


def run_options(config, name: str) -> dict:
    """How a run builds its generator ``name``, beside ``model_spec``: the compute dtype,
    ``remat`` and, for models with a trunk of identical blocks, ``scan_blocks``."""
    options = {"dtype": jnp.dtype(config.dtype)}
    for option in ("remat", "scan_blocks"):
        if not config.get(option):
            continue
        has = lambda n, o=option: o in methods.model_class(n).__dataclass_fields__  # noqa: E731
        if not has(name):
            have = [n for n in methods.model_names() if has(n)]
            raise UserError(
                f"--config.{option} is not available for the model {name!r} (only for "
                f"{', '.join(have)}); drop it."
            )
        options[option] = True
    return options


class Task(abc.ABC):
    """Base class and documentation of the contract (see the module docstring).
    ``init`` and ``train_step`` are what every method must write; a subclass without
    them cannot be instantiated.

    Class attributes:
      losses: the loss names ``config.losses`` may use (checked before a run starts).
    """

    losses: tuple[str, ...] = ()
    image_to_image: bool = True  # ``predict`` takes an image batch (pix2pixHD: label maps)
    blind: bool = False  # evaluated under fixed blur kernels and noise by default (DASR)

    def __init__(self, config):
        self.config = config
        self.scale = int(config.scale)

    @classmethod
    def check_config(cls, config) -> None:
        """Raise :class:`UserError` for a config value this task cannot use (called before
        a run writes anything). Default: the SR data blocks ``data.train``/``data.eval``."""
        for split in ("train", "eval"):
            block = config.get("data", {}).get(split)
            if block is not None:
                check_source_config(block, f"data.{split}")

    # -- training ------------------------------------------------------------------
    def num_train_steps(self) -> int:
        """The run's length in optimizer steps (default ``config.num_train_steps``;
        pix2pixHD counts epochs of its dataset)."""
        return self.config.num_train_steps

    @abc.abstractmethod
    def init(self, rng: jax.Array) -> TrainState:
        """The initial train state (networks keyed by role: 'g', 'd', 'e', ...)."""

    @abc.abstractmethod
    def train_step(self, state: TrainState, batch: dict, consts: dict):
        """``(state, batch, consts) -> (state, metrics)``, pure and jittable. ``metrics``
        holds device scalars, among them ``lr`` and ``nonfinite`` (1.0 when the step
        was skipped because a loss or gradient was NaN/inf: the state is unchanged)."""

    def phases(self) -> list[tuple[int, object]]:
        """``[(first step, step fn)]`` in order; each phase is compiled when reached
        (DASR: encoder-only, then joint). Default: one phase, ``train_step``."""
        return [(0, self.train_step)]

    def constants(self) -> dict:
        """Frozen arrays the step reads (replicated, passed as an argument)."""
        return {}

    def train_data(self, process_index: int = 0, process_count: int = 1):
        """This process's grain iterator of uint8 batches (its share of each global batch)."""
        return train_dataset(self.config, process_index=process_index, process_count=process_count)

    def example_batch(self, batch_size: int) -> dict:
        """A random uint8 batch of the training shape (benchmarks, contract tests)."""
        p = self.config.data.patch_size
        rng = np.random.default_rng(0)
        return {"gt": rng.integers(0, 256, (batch_size, p, p, 3), dtype=np.uint8)}

    def init_from(self, state: TrainState, name: str, kwargs: dict, variables: dict, raw=None):
        """Start from pretrained weights (``config.init_from``: a workdir or a model dir,
        loaded by the loop into ``(name, kwargs, variables)``, and ``raw``, the workdir's
        whole restored state, or ``None`` for a model dir). Default: they become the
        generator ('g') and its EMA copy. The optimizer state stays as ``init`` made it:
        optax initialises from shapes only, so it already is the state of these weights."""
        want = self.model_spec(self.config)
        # Compared as built modules: a converted model names every field (num_in_ch=3),
        # a config only those it sets, and both build the same network.
        if name != want[0] or build_model(name, **kwargs) != build_model(want[0], **want[1]):
            raise UserError(
                f"init_from={self.config.init_from!r} holds {name} {kwargs}, but this config "
                f"builds {want[0]} {want[1]}; match config.model/scale to it."
            )
        old = state.params["g"]
        params = jax.tree.map(
            lambda x, ref: jnp.asarray(np.asarray(x), ref.dtype), variables["params"], old
        )
        params = jax.device_put(params, jax.tree.leaves(old)[0].sharding)
        return state.replace(
            params={**state.params, "g": params},
            ema=jax.tree.map(jnp.copy, params) if state.ema is not None else None,
        )

    # -- export and evaluation -----------------------------------------------------
    @classmethod
    def model_spec(cls, config) -> tuple[str, dict]:
        """``(registry name, kwargs)`` of the network a run of ``config`` exports
        (``jaxsr.load_model`` rebuilds it from a workdir without building the task)."""
        return model_spec(config)

    @staticmethod
    def model_variables(raw) -> dict:
        """The exported network's variables in a train state (a ``TrainState`` or its
        restored nested dict): the generator's EMA weights when kept (BasicSR evaluates
        and releases those), else its trained ones."""
        ema = state_field(raw, "ema")
        return {"params": ema if ema is not None else state_field(raw, "params")["g"]}

    def eval_variables(self, state: TrainState) -> dict:
        """The variables ``predict`` evaluates during training."""
        return self.model_variables(state)

    def predict(self, variables: dict, lq: jax.Array) -> jax.Array:
        """Input float [0, 1] NHWC -> output float (unclamped). A task whose evaluator
        feeds another input (pix2pixHD: a dict of label maps) documents it."""
        return self.model.apply(variables, lq)

    @classmethod
    def predictor(cls, module, variables, *, ensemble: bool = False, segmenter: str = ""):
        """How ``jaxsr.evaluate`` runs a loaded model of this task: ``lq (1, h, w, 3)``
        float in [0, 1] -> output. Default: the jitted network, averaged over the 8
        flips/rotations of its input with ``ensemble``. A task whose model takes other
        inputs (SFTGAN: a segmentation prior from ``segmenter``) makes them here."""
        apply = jax.jit(_at_any_size(module, ensemble))
        return lambda lq: apply(variables, lq)

    @classmethod
    def graph(cls, module, variables, config=None) -> GraphSignature:
        """The network as ``python -m jaxsr.export`` writes it (ONNX, StableHLO): its
        inputs, size rule and function (:mod:`jaxsr.tasks.signature`). ``config`` is the
        training run's, ``None`` for a converted model. Default: one image in, one out;
        a network that needs sizes in multiples declares ``size_multiple``, one that needs
        a smallest side ``min_side``."""
        return image_graph(
            module,
            variables,
            multiple=getattr(module, "size_multiple", 1),
            min_side=getattr(module, "min_side", 0),
        )

    @classmethod
    def tile_predictor(cls, module, variables, *, ensemble: bool = False):
        """How ``jaxsr.upscale`` runs it on a batch of tiles ``(n, h, w, 3)``; a task that
        cannot be fed tile by tile raises :class:`UserError` saying what to use instead."""
        apply = jax.jit(_at_any_size(module, ensemble))
        return lambda tiles: apply(variables, jnp.asarray(tiles))

    def evaluator(self, consts: dict) -> Evaluator:
        """The evaluation set and protocol (default: bicubic ×scale SR on
        ``config.data.eval``, PSNR/SSIM against bicubic)."""
        return Evaluator.from_config(self.config)


def _at_any_size(module, ensemble: bool):
    """``module.apply`` (over the 8 flips with ``ensemble``) for inputs of any size: a
    network that needs multiples of ``size_multiple`` (the ×2 RRDBNet) gets them
    reflect-padded and its output cropped, as the exported graph does; one with a
    ``min_side`` gets smaller sides mirrored up to it."""
    apply = self_ensemble(module.apply) if ensemble else module.apply
    m = getattr(module, "size_multiple", 1)
    if m != 1:
        inner = apply
        apply = lambda variables, x: at_any_size(  # noqa: E731
            lambda y: inner(variables, y), m, module.scale
        )(x)
    smallest = getattr(module, "min_side", 1)
    if smallest <= 1:
        return apply

    def mirrored(variables, x):
        # A side below the network's smallest (Real-CUGAN's reflect padding) is mirrored
        # up to it and the output cropped back: the sizes are static at trace time.
        h, w = x.shape[1], x.shape[2]
        ph, pw = max(smallest - h, 0), max(smallest - w, 0)
        if ph or pw:
            x = jnp.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="symmetric")
        return apply(variables, x)[:, : h * module.scale, : w * module.scale]

    return mirrored
