"""Training tasks: each wires models, losses and degradations into pure step functions.

Every task implements the contract of :mod:`jaxsr.tasks.base` (``Task``); the loop,
the CLIs and the benchmark know nothing else about it. ``TASKS`` maps
``config.task`` to the class.
"""

from __future__ import annotations

from jaxsr.errors import UserError
from jaxsr.models import MODELS
from jaxsr.tasks.base import Task, model_spec
from jaxsr.tasks.dasr import DASRTask
from jaxsr.tasks.esrgan import ESRGAN
from jaxsr.tasks.pix2pixhd import Pix2PixHD
from jaxsr.tasks.restore import Restoration
from jaxsr.tasks.sftgan import SFTGAN
from jaxsr.tasks.spsagan import SPSAGAN
from jaxsr.tasks.sr import SupervisedSR

TASKS = {
    "sr": SupervisedSR,
    "esrgan": ESRGAN,
    "dasr": DASRTask,
    "restore": Restoration,
    "pix2pixhd": Pix2PixHD,
    "sftgan": SFTGAN,
    "spsagan": SPSAGAN,
}


def check_task_config(config) -> None:
    """The task, its model and its losses against what the task declares."""
    task = config.get("task")
    if task not in TASKS:
        raise UserError(f"Unknown task {task!r}; choose one of {sorted(TASKS)}.")
    model = config.model.get("name")
    if model not in MODELS:
        raise UserError(f"Unknown model {model!r}; choose one of {sorted(MODELS)}.")
    allowed = TASKS[task].losses
    unknown = sorted(set(config.get("losses", {})) - set(allowed))
    if unknown:
        raise UserError(
            f"Unknown loss(es) {unknown} for task {task!r}; choose from {list(allowed)}."
        )


def make_task(config):
    """``TASKS[config.task](config)`` after :func:`check_task_config`."""
    check_task_config(config)
    return TASKS[config.task](config)


__all__ = [
    "DASRTask",
    "ESRGAN",
    "Pix2PixHD",
    "TASKS",
    "check_task_config",
    "Restoration",
    "SFTGAN",
    "SPSAGAN",
    "SupervisedSR",
    "Task",
    "make_task",
    "model_spec",
]
