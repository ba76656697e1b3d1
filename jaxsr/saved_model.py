"""Model directories: a trained or imported network that ``jaxsr.load_model`` can run.

Two kinds of path load the same way:

* a **model directory** written by ``python -m jaxsr.convert`` or :func:`save_model`:
  ``model.json`` (architecture name and constructor arguments) + ``variables.npz``
  (the Flax variables, one array per ``/``-joined path);
* a **training workdir** (``config.json`` + Orbax checkpoints): the generator of the
  newest checkpoint, its EMA weights when the run kept them.

Both are written atomically (a temporary directory renamed into place).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import jax
import numpy as np

from jaxsr.convert.common import nest
from jaxsr.errors import UserError
from jaxsr.models import build_model

MODEL_FILE, VARIABLES_FILE = "model.json", "variables.npz"


def _flatten(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = np.asarray(v)
    return out


def _unflatten(flat: dict) -> dict:
    return nest({tuple(path.split("/")): value for path, value in flat.items()})


def save_model(out_dir: str, name: str, kwargs: dict, variables: dict, **meta) -> None:
    """Write ``out_dir`` atomically; ``kwargs`` rebuild ``MODELS[name](**kwargs)``."""
    build_model(name, **kwargs)  # fail now, not at load time, on a bad description
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-model-", dir=parent)
    try:
        with open(os.path.join(tmp, MODEL_FILE), "w") as f:
            json.dump({"model": name, "kwargs": kwargs, **meta}, f, indent=2)
        np.savez(os.path.join(tmp, VARIABLES_FILE), **_flatten(jax.device_get(variables)))
        if os.path.isdir(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)


def model_kwargs_from_config(config) -> tuple[str, dict]:
    """The generator's registry name and kwargs in a training config (compute dtype aside)."""
    kwargs = dict(config.model)
    name = kwargs.pop("name")
    kwargs["scale"] = config.scale
    return name, kwargs


def load_model_description(path: str) -> tuple[str, dict, dict]:
    """``(model name, constructor kwargs, variables)`` of a model dir or training workdir."""
    if os.path.isfile(os.path.join(path, MODEL_FILE)):
        with open(os.path.join(path, MODEL_FILE)) as f:
            desc = json.load(f)
        with np.load(os.path.join(path, VARIABLES_FILE)) as f:
            variables = _unflatten(dict(f))
        return desc["model"], desc["kwargs"], variables
    if os.path.isfile(os.path.join(path, "config.json")):
        from jaxsr.tasks import TASKS
        from jaxsr.train.checkpoint import restore_raw_state
        from jaxsr.train.loop import load_config

        config = load_config(path)
        name, kwargs = model_kwargs_from_config(config)
        raw = restore_raw_state(path)
        return name, kwargs, TASKS[config.task].model_variables(raw)
    raise UserError(
        f"{path!r} is neither a jaxsr model directory ({MODEL_FILE}) nor a training workdir "
        "(config.json); train one with jaxsr.main or import weights with jaxsr.convert."
    )


def load_model(path: str):
    """``(module, variables)`` for a model directory or a training workdir.

    ``module.apply(variables, lq)`` maps an NHWC float batch in [0, 1] to the restored
    image (``module.scale`` times larger for SR models).
    """
    name, kwargs, variables = load_model_description(path)
    return build_model(name, **kwargs), variables
