"""Load and save networks: ``jaxsr.load_model(path)`` for a model directory
(:mod:`jaxsr.model_dir`) or a training workdir (:mod:`jaxsr.train.export`), and
``save_model`` for a model directory. One import for users and CLIs."""

from __future__ import annotations

from jaxsr import methods
from jaxsr.errors import UserError
from jaxsr.model_dir import check_output, is_model_dir, save_model
from jaxsr.models import build_model
from jaxsr.train.export import load_model_description


def load_model(path: str):
    """``(module, variables)`` for a model directory or a training workdir.

    ``module.apply(variables, lq)`` maps an NHWC float batch in [0, 1] to the restored
    image (``module.scale`` times larger for SR models).
    """
    name, kwargs, variables = load_model_description(path)
    return build_model(name, **kwargs), variables


def load_model_and_task(path: str):
    """``(module, variables, task class)``: what a CLI asks of a model (how to feed it,
    which protocol evaluates it) comes from the task of its method (:mod:`jaxsr.methods`)."""
    name, kwargs, variables = load_model_description(path)
    if name.endswith(("_discriminator", "_discriminator_sn", "_encoder")):
        # A run's helper networks convert and load too, but produce no image.
        raise UserError(
            f"{path} holds {name}, a network that scores or encodes images rather than "
            "making them; upscale, evaluate and export take a generator (a run's workdir, "
            "or its imported generator)."
        )
    return build_model(name, **kwargs), variables, methods.task_of_model(name)


__all__ = [
    "check_output",
    "is_model_dir",
    "load_model",
    "load_model_and_task",
    "load_model_description",
    "save_model",
]
