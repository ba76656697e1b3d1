"""What a training workdir exports: the network ``jaxsr.load_model`` rebuilds from it.

A workdir's ``config.json`` names its task (:mod:`jaxsr.methods`), whose
``model_spec``/``model_variables`` say which network of the newest checkpoint is the
result (the generator's EMA weights when the run kept them). A model directory
(:mod:`jaxsr.model_dir`) loads the same way, so ``init_from``, ``load_model`` and the
CLIs accept either.
"""

from __future__ import annotations

import os

from jaxsr import files, methods, zoo
from jaxsr.errors import UserError
from jaxsr.model_dir import MODEL_FILE, is_model_path, read_model_dir
from jaxsr.train.checkpoint import restore_raw_state
from jaxsr.train.workdir import CONFIG_FILE, load_config


def read_workdir(path: str) -> tuple[str, dict, dict, dict]:
    """``(model name, kwargs, variables, raw state)`` of a workdir's newest checkpoint."""
    config = load_config(path)
    task = methods.task_class(config.get("task"))
    name, kwargs = task.model_spec(config)
    raw = restore_raw_state(path)
    return name, kwargs, task.model_variables(raw), raw


def load_pretrained(path: str) -> tuple[str, dict, dict, dict | None]:
    """``(model name, kwargs, variables, raw state or None)`` of a model directory or a
    workdir (the raw state: every network a run trained, for ``Task.init_from``)."""
    if zoo.is_name(path):  # a published model: converted once into the cache
        path = zoo.model_path(path)
    if is_model_path(path):
        return (*read_model_dir(path), None)
    if files.exists(os.path.join(path, CONFIG_FILE)):
        return read_workdir(path)
    raise UserError(
        f"{path!r} is neither a jaxsr model directory ({MODEL_FILE}) nor a training workdir "
        "(config.json); train one with jaxsr.main or import weights with jaxsr.convert."
    )


def load_model_description(path: str) -> tuple[str, dict, dict]:
    """``(model name, constructor kwargs, variables)`` of a model dir or training workdir."""
    return load_pretrained(path)[:3]
