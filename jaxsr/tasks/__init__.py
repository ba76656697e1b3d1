"""Training tasks: each wires models, losses and degradations into pure step functions.

A task object exposes ``init(rng) -> TrainState``, ``constants()`` (frozen arrays such
as VGG weights), ``train_step(state, batch, constants) -> (state, metrics)``,
``eval_params(state)`` and ``predict(variables, lq) -> sr``;
``jaxsr.train.loop`` knows nothing else about it.
"""

from __future__ import annotations

from jaxsr.errors import UserError
from jaxsr.tasks.dasr import DASRTask
from jaxsr.tasks.esrgan import ESRGAN
from jaxsr.tasks.restore import Restoration
from jaxsr.tasks.sr import SupervisedSR

TASKS = {"sr": SupervisedSR, "esrgan": ESRGAN, "dasr": DASRTask, "restore": Restoration}


def make_task(config):
    if config.task not in TASKS:
        raise UserError(f"Unknown task {config.task!r}; choose one of {sorted(TASKS)}.")
    return TASKS[config.task](config)


__all__ = ["DASRTask", "ESRGAN", "TASKS", "Restoration", "SupervisedSR", "make_task"]
