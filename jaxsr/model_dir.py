"""Model directories: a network as ``python -m jaxsr.convert`` and :func:`save_model`
write it: ``model.json`` (the registry name and constructor arguments) +
``variables.npz`` (the Flax variables, one array per ``/``-joined path).

Written atomically (locally one directory exchange; on an object store ``model.json``
last). A model directory is only ever written over an empty folder or an older model
directory (with ``overwrite``), never over a folder of other files or over its own
inputs. Training workdirs load too, one layer up (:mod:`jaxsr.train.export`);
:func:`jaxsr.load_model` takes either.
"""

from __future__ import annotations

import json
import os
import zipfile

import jax
import numpy as np

from jaxsr import files
from jaxsr.errors import UserError
from jaxsr.models import build_model
from jaxsr.trees import nest

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


def is_model_dir(path: str) -> bool:
    """A folder holding a jaxsr model and nothing else (so replacing it loses nothing);
    one left half-written on an object store (no ``model.json`` yet) counts too."""
    entries = set(files.listdir(path)) if files.isdir(path) else set()
    return bool(entries) and entries <= {MODEL_FILE, VARIABLES_FILE}


def check_output(out: str, inputs=(), *, overwrite: bool = False, kind: str = "dir") -> None:
    """Refuse an output path whose writing could destroy something jaxsr did not make.

    ``out`` may not be (or contain) one of ``inputs``, nor lie inside an input folder (a
    model directory, a workdir); an existing ``out`` must be an
    empty folder or a jaxsr model directory (``kind='dir'``) or a file (``kind='file'``),
    and is replaced only with ``overwrite``.
    """
    real = files.resolved(out)
    for src in inputs:
        src_real = files.resolved(src)
        if src_real == real or src_real.startswith(real.rstrip("/") + "/"):
            raise UserError(
                f"--out {out!r} is or contains the input {src!r}; choose another output path."
            )
        if real.startswith(src_real.rstrip("/") + "/") and files.isdir(src):
            # e.g. export --out=MODEL/variables.npz would replace the model's own weights
            raise UserError(
                f"--out {out!r} lies inside the input folder {src!r}; jaxsr never writes into "
                "its inputs: choose a path outside it."
            )
    if not files.exists(out):
        return
    if kind == "file":
        if files.isdir(out):
            raise UserError(f"--out {out!r} is a folder; give a file name.")
        if not overwrite:
            raise UserError(f"--out {out!r} already exists; pass --overwrite to replace it.")
        return
    if not files.isdir(out):
        raise UserError(f"--out {out!r} is a file, not a model directory; choose another path.")
    if not files.listdir(out):
        return
    if not is_model_dir(out):
        raise UserError(
            f"--out {out!r} is a folder with other files (not a jaxsr model directory); jaxsr "
            "will not replace it. Choose a new or empty folder."
        )
    if not overwrite:
        raise UserError(
            f"--out {out!r} already holds a jaxsr model; pass --overwrite to replace it."
        )


def save_model(
    out_dir: str,
    name: str,
    kwargs: dict,
    variables: dict,
    *,
    overwrite: bool = False,
    inputs=(),
    **meta,
) -> None:
    """Write ``out_dir`` atomically (on an object store ``model.json`` goes last);
    ``kwargs`` rebuild ``MODELS[name](**kwargs)``.

    See :func:`check_output` for what may be replaced (``inputs``: the paths the model
    was made from).
    """
    build_model(name, **kwargs)  # fail now, not at load time, on a bad description
    check_output(out_dir, inputs, overwrite=overwrite)
    with files.atomic_dir(out_dir, marker=MODEL_FILE) as tmp:
        with open(os.path.join(tmp, MODEL_FILE), "w") as f:  # our temporary folder
            json.dump({"model": name, "kwargs": kwargs, **meta}, f, indent=2)
        np.savez(os.path.join(tmp, VARIABLES_FILE), **_flatten(jax.device_get(variables)))


def is_model_path(path: str) -> bool:
    return files.exists(os.path.join(path, MODEL_FILE))


def read_model_dir(path: str) -> tuple[str, dict, dict]:
    """``(model name, constructor kwargs, variables)`` of a model directory."""
    desc = files.read_json(os.path.join(path, MODEL_FILE), "model description")
    if not isinstance(desc.get("model"), str) or not isinstance(desc.get("kwargs"), dict):
        raise UserError(
            f"{os.path.join(path, MODEL_FILE)} names no model and arguments; it was not "
            "written by jaxsr (convert the weights again)."
        )
    variables_path = os.path.join(path, VARIABLES_FILE)
    try:
        variables = _unflatten(files.load_numpy(variables_path))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(
            f"{variables_path}: the model's weights are missing or damaged "
            f"({type(e).__name__}: {e}); convert or save the model again."
        ) from e
    return desc["model"], desc["kwargs"], variables
