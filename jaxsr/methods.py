"""The method registry: one entry per method, from which every list is derived.

A method is its own files — model(s) in ``jaxsr/models/``, a task in ``jaxsr/tasks/``,
recipe(s) in ``configs/``, a converter for its official checkpoints, a PyTorch
reference for the benchmark, a docs page — plus **one** :class:`Method` entry here
(or, for a method outside jaxsr, one :func:`register` call in a module named in
``$JAXSR_METHODS``). From the entries come the model names ``build_model`` knows, the
tasks ``config.task`` may name, the recipes ``configs.RECIPES`` lists, the architectures
``jaxsr.convert`` recognises and the sentence that lists them, the task the evaluation
and upscaling CLIs ask about a model (its inputs, its protocol), the benchmark's
PyTorch step, and the recipes of the contract tests.

Entries name code as ``"module:attribute"`` strings, imported when first needed: this
module sits at the bottom of the package (it imports nothing of jaxsr but
:mod:`jaxsr.errors`), so the low layers (model directories, the converter) and the high
ones (the loop, the CLIs) read the same registry without importing each other.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os

from jaxsr.errors import UserError

PLUGINS_ENV = "JAXSR_METHODS"


@dataclasses.dataclass(frozen=True)
class Method:
    """One method. Code is named ``"module:attribute"``.

    Attributes:
      name: the method's name (docs, listings).
      tasks: ``{config.task: task class}``; the task classes implement
        :class:`jaxsr.tasks.base.Task`.
      models: ``{registry name: flax module class}`` of every network it exports.
      recipes: ``{config.task: recipe}``: the ``configs/<recipe>.py`` that trains each task
        (``recipe:preset`` when a preset of it picks the task; recipes outside
        ``configs/`` give a path to the file).
      converter: ``architecture(state_dict) -> (name, kwargs, variables, origins,
        description, example inputs) | None`` for the official checkpoints, or ``None``.
      weights: what the converter reads, for the sentence of supported layouts.
      bench: the method's pieces of ``jaxsr.benchmark``: ``torch_train`` (``make(config)
        -> step()``, the official iteration), ``torch_infer`` (``make(config) -> net``),
        both in the repository's ``benchmarks/`` (never installed, so ``import jaxsr``
        needs no torch); ``jaxsr_extra`` (``run(step, steps) -> (label, row)``, another
        way to feed the jaxsr step); ``custom`` (``run(config, steps, options)``, a
        benchmark of its own instead of the standard one); ``suite``: the method's rows
        of ``--suite=paper`` as ``(title, "recipe[:preset]", variants, largest_batch)``
        with variants ``"plain"`` (fp32, bf16) or ``"all"`` (also remat, scan) — without
        it, one plain row per recipe of ``recipes``.
      docs: the method's page under ``docs/``.
      scales: the ``config.scale`` values its tasks train (checked before a run writes
        anything); empty: any.
    """

    name: str
    tasks: dict
    models: dict
    recipes: dict
    converter: str | None = None
    weights: str = ""
    bench: dict = dataclasses.field(default_factory=dict)
    docs: str = ""
    scales: tuple = ()


BUILTIN = (
    Method(
        name="ESRGAN",
        tasks={"sr": "jaxsr.tasks.sr:SupervisedSR", "esrgan": "jaxsr.tasks.esrgan:ESRGAN"},
        models={"rrdbnet": "jaxsr.models.rrdbnet:RRDBNet"},
        recipes={"sr": "esrgan_psnr", "esrgan": "esrgan"},
        converter="jaxsr.convert.rrdbnet:architecture",
        weights="ESRGAN/BasicSR/Real-ESRGAN RRDBNet",
        bench={
            "torch_train": "benchmarks.torch_reference:esrgan_train_step",
            "torch_infer": "benchmarks.torch_reference:esrgan_infer",
            "suite": (
                ("ESRGAN PSNR", "esrgan_psnr", "all", True),
                ("ESRGAN GAN (G+D+VGG)", "esrgan", "plain", False),
            ),
        },
        docs="methods/esrgan.md",
        scales=(1, 2, 4),
    ),
    Method(
        name="DASR",
        tasks={"dasr": "jaxsr.tasks.dasr:DASRTask"},
        models={"dasr": "jaxsr.models.dasr:BlindSR"},
        recipes={"dasr": "dasr"},
        converter="jaxsr.convert.dasr:architecture",
        weights="DASR",
        bench={
            "torch_train": "benchmarks.torch_reference:dasr_train_step",
            "torch_infer": "benchmarks.torch_reference:dasr_infer",
            "jaxsr_extra": "jaxsr.bench.dasr:host_degradation",
            "suite": (
                ("DASR iso", "dasr", "all", False),
                ("DASR aniso+noise", "dasr:aniso", "plain", False),
            ),
        },
        docs="methods/dasr.md",
        scales=(2, 3, 4),
    ),
    Method(
        name="MIRNet",
        tasks={"restore": "jaxsr.tasks.restore:Restoration"},
        models={"mirnet": "jaxsr.models.mirnet:MIRNet"},
        recipes={"restore": "mirnet"},
        converter="jaxsr.convert.mirnet:architecture",
        weights="MIRNet",
        bench={
            "torch_train": "benchmarks.torch_reference:mirnet_train_step",
            "torch_infer": "benchmarks.torch_reference:mirnet_infer",
        },
        docs="methods/mirnet.md",
        scales=(1,),
    ),
    Method(
        name="pix2pixHD",
        tasks={"pix2pixhd": "jaxsr.tasks.pix2pixhd:Pix2PixHD"},
        models={
            "pix2pixhd_global": "jaxsr.models.pix2pixhd:GlobalGenerator",
            "pix2pixhd_local": "jaxsr.models.pix2pixhd:LocalEnhancer",
            "pix2pixhd_discriminator": "jaxsr.models.pix2pixhd:MultiscaleDiscriminator",
            "pix2pixhd_encoder": "jaxsr.models.pix2pixhd:Encoder",
        },
        recipes={"pix2pixhd": "pix2pixhd"},
        converter="jaxsr.convert.pix2pixhd:architecture",
        weights="pix2pixHD G/D/E",
        bench={
            "custom": "jaxsr.bench.pix2pixhd:run",
            "suite": (
                ("pix2pixHD 512p (G1)", "pix2pixhd", "plain", False),
                ("pix2pixHD 1024p (G1+G2)", "pix2pixhd:local", "plain", False),
            ),
        },
        docs="methods/pix2pixhd.md",
        scales=(1,),
    ),
    Method(
        name="SFTGAN",
        tasks={"sftgan": "jaxsr.tasks.sftgan:SFTGAN"},
        models={"sftgan": "jaxsr.models.sftgan:SFTNet"},
        recipes={"sftgan": "sftgan"},
        converter="jaxsr.convert.sftgan:architecture",
        weights="SFTGAN",
        docs="methods/sftgan.md",
        scales=(4,),
    ),
    Method(
        name="SPSAGAN",
        tasks={"spsagan": "jaxsr.tasks.spsagan:SPSAGAN"},
        models={"spsagan": "jaxsr.models.spsagan:SPSAGenerator"},
        recipes={"spsagan": "spsagan"},
        bench={"custom": "jaxsr.bench.spsagan:run"},
        docs="methods/spsagan.md",
        scales=(4,),
    ),
    Method(
        name="Real-ESRGAN",
        tasks={
            "realesrnet": "jaxsr.tasks.realesrgan:RealESRNet",
            "realesrgan": "jaxsr.tasks.realesrgan:RealESRGAN",
        },
        models={
            "srvgg": "jaxsr.models.srvgg:SRVGGNetCompact",
            "unet_discriminator_sn": "jaxsr.models.unet_discriminator:UNetDiscriminatorSN",
        },
        recipes={"realesrnet": "realesrgan:net", "realesrgan": "realesrgan"},
        converter="jaxsr.convert.realesrgan:architecture",
        weights="Real-ESRGAN SRVGGNetCompact/U-Net D",
        bench={
            "torch_train": "benchmarks.torch_reference:realesrgan_train_step",
            "torch_infer": "benchmarks.torch_reference:realesrgan_infer",
            "suite": (
                ("RealESRNet (degradations in the step)", "realesrgan:net", "plain", False),
                ("RealESRGAN (G+U-Net D+VGG, degradations)", "realesrgan", "plain", False),
            ),
        },
        docs="methods/realesrgan.md",
        scales=(1, 2, 4),
    ),
    Method(
        name="Real-CUGAN",
        tasks={},  # imported weights only: runs as a plain image-to-image network
        models={"realcugan": "jaxsr.models.realcugan:RealCUGAN"},
        recipes={},
        converter="jaxsr.convert.realcugan:architecture",
        weights="Real-CUGAN UpCunet2x/3x/4x",
        docs="methods/realcugan.md",
    ),
)

_registered: list[Method] = []


def register(method: Method) -> None:
    """Add a method defined outside jaxsr (call it from a module named in
    ``$JAXSR_METHODS``); its task and model names must be new."""
    taken = {n for m in all_methods() for n in (*m.tasks, *m.models)}
    clash = sorted(taken & {*method.tasks, *method.models})
    if clash:
        raise UserError(f"Method {method.name!r} reuses the registered name(s) {clash}.")
    _registered.append(method)
    _caches_clear()


@functools.cache
def _plugins_loaded() -> bool:
    for module in filter(None, os.environ.get(PLUGINS_ENV, "").split(",")):
        try:
            importlib.import_module(module.strip())
        except ImportError as e:
            raise UserError(
                f"{PLUGINS_ENV} names {module!r}, which cannot be imported ({e}); check the "
                "name and that its folder is on PYTHONPATH."
            ) from e
    return True


def all_methods() -> tuple[Method, ...]:
    """The built-in methods, then the registered ones (``$JAXSR_METHODS`` imported)."""
    _plugins_loaded()
    return (*BUILTIN, *_registered)


def load(ref: str):
    """The object a ``"module:attribute"`` string names."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _by(kind: str) -> dict[str, tuple[Method, str]]:
    out = {}
    for m in all_methods():
        for name, ref in getattr(m, kind).items():
            out[name] = (m, ref)
    return out


@functools.cache
def _tables():
    return _by("models"), _by("tasks")


def _caches_clear() -> None:
    _tables.cache_clear()


def model_names() -> list[str]:
    return sorted(_tables()[0])


def task_names() -> list[str]:
    return sorted(_tables()[1])


def model_class(name: str):
    """The flax module class registered as ``name``; an unknown name lists the others."""
    models = _tables()[0]
    if name not in models:
        raise UserError(f"Unknown model {name!r}; choose one of {model_names()}.")
    return load(models[name][1])


def task_class(name: str):
    """The task class of ``config.task == name``; an unknown name lists the others."""
    tasks = _tables()[1]
    if name not in tasks:
        raise UserError(f"Unknown task {name!r}; choose one of {task_names()}.")
    return load(tasks[name][1])


def method_of_model(name: str) -> Method:
    model_class(name)  # the error for an unknown name
    return _tables()[0][name][0]


def method_of_task(name: str) -> Method:
    task_class(name)  # the error for an unknown name
    return _tables()[1][name][0]


def task_of_model(name: str):
    """The task class that trains and evaluates the model ``name`` (the method's first
    task, e.g. ESRGAN's ``sr``; the base task for a method without one): what the CLIs
    ask about a model's inputs."""
    method = method_of_model(name)
    # A network no jaxsr task trains yet (imported weights only) runs as a plain
    # image-to-image network: the base task's defaults.
    return load(next(iter(method.tasks.values()), "jaxsr.tasks.base:Task"))


def recipes() -> dict[str, str]:
    """``{config.task: recipe}`` of every method."""
    return {task: recipe for m in all_methods() for task, recipe in m.recipes.items()}


def converters() -> list[tuple[Method, object]]:
    """``[(method, architecture function)]`` of the methods with official weights."""
    return [(m, load(m.converter)) for m in all_methods() if m.converter]


def supported_weights() -> str:
    return ", ".join(m.weights or m.name for m in all_methods() if m.converter)
