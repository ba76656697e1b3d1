"""Training tasks: each wires models, losses and degradations into pure step functions.

Every task implements the contract of :mod:`jaxsr.tasks.base` (``Task``); the loop,
the CLIs and the benchmark know nothing else about it. Which class a
``config.task`` names is registered in :mod:`jaxsr.methods`.
"""

from __future__ import annotations

from jaxsr import methods
from jaxsr.tasks.base import Task, model_spec
from jaxsr.train.validate import check_task_config


def make_task(config):
    """The registered task class of ``config.task``, built from ``config`` after
    :func:`check_task_config`."""
    check_task_config(config)
    return methods.task_class(config.task)(config)


__all__ = ["Task", "check_task_config", "make_task", "model_spec"]
