"""Import official PyTorch checkpoints as jaxsr model directories (the library behind
``python -m jaxsr.convert``).

Reads the file without torch (:mod:`jaxsr.weights.torch_pickle`), unwraps BasicSR/MIRNet
style containers (``params_ema`` > ``params`` > ``state_dict``), strips ``module.``, and
asks each registered method's converter (:mod:`jaxsr.methods`) whether it recognises
the keys and shapes; the first that does maps them, every tensor is checked against
the detected architecture, and the result is written as a model directory that
``jaxsr.load_model``, ``evaluate``, ``upscale`` and ``init_from`` accept. torchvision's
VGG19 feature extractor (the perceptual losses' weights) is written as an ``.npz``.
"""

from __future__ import annotations

import numpy as np

from jaxsr import files, methods
from jaxsr.convert.check import check_variables
from jaxsr.convert.common import unwrap
from jaxsr.convert.ncnn import official_state_dict
from jaxsr.errors import UserError
from jaxsr.model_dir import check_output, save_model
from jaxsr.weights.ncnn import read_ncnn
from jaxsr.weights.safetensors import read_safetensors
from jaxsr.weights.torch_pickle import flat_state_dict, load_torch
from jaxsr.weights.vgg import vgg19_params_from_torch


def recognise(sd: dict):
    """``(model name, kwargs, variables, origins, description, example inputs)`` of the
    first registered method whose converter recognises ``sd`` (inputs ``None``: one RGB
    image), else ``None``."""
    for _, architecture in methods.converters():
        found = architecture(sd)
        if found is not None:
            return found
    return None


def check_finite(src: str, sd: dict) -> None:
    """Refuse weights holding NaN or infinity (a diverged run or a damaged file): the
    converted model would only ever output NaN."""
    bad = {}
    for key, v in sd.items():
        if v.dtype.kind not in "biu":  # float16/32/64 and bfloat16
            n = int(np.size(v) - np.count_nonzero(np.isfinite(v)))
            if n:
                bad[key] = n
    if bad:
        shown = ", ".join(f"{k} ({n} of {sd[k].size})" for k, n in list(bad.items())[:3])
        more = f" and {len(bad) - 3} more tensors" if len(bad) > 3 else ""
        raise UserError(
            f"{src}: NaN or infinite values in {shown}{more}; the checkpoint is damaged or "
            "from a diverged run, so nothing was converted."
        )


def read_state_dict(src: str) -> tuple[dict, dict]:
    """``({official key: array}, extra model kwargs)`` of a weight file: a PyTorch
    ``.pth``/``.pt``, a ``.safetensors``, or an ncnn ``.param`` (its ``.bin`` beside it),
    whose layers are named as the official ``.pth`` names them."""
    lower = src.lower()
    if lower.endswith(".param"):
        return official_state_dict(src, read_ncnn(src))
    if lower.endswith(".safetensors"):
        return flat_state_dict(unwrap(read_safetensors(src))), {}
    obj = load_torch(src)
    if not isinstance(obj, dict):
        raise UserError(f"{src}: expected a state dict (a mapping), found {type(obj).__name__}.")
    return flat_state_dict(unwrap(obj)), {}


def convert(src: str, out: str, *, overwrite: bool = False) -> str:
    """Convert ``src`` into ``out``; returns a one-line description of what was written.

    ``out`` is a model directory; an existing one is replaced only with ``overwrite``,
    and a folder that holds anything else is never touched.
    """
    sd, extra = read_state_dict(src)
    check_finite(src, sd)
    try:
        found = recognise(sd)
    except (KeyError, IndexError, ValueError) as e:  # a recognised layout with odd tensors
        raise UserError(
            f"{src}: the tensors do not fit the layout their names suggest ({e}); "
            "is the file complete and from the official code?"
        ) from e
    if found is not None:
        name, cfg, variables, origins, description, inputs = found
        if extra:
            cfg = {**cfg, **extra}
            description += "".join(f", {k}={v}" for k, v in extra.items())
        check_variables(src, name, cfg, variables, origins, inputs)
        save_model(
            out,
            name,
            cfg,
            variables,
            overwrite=overwrite,
            inputs=(src,),
            source=files.absolute(src),
        )
        return description
    if any(k.startswith("features.") for k in sd):
        params = vgg19_params_from_torch(sd)
        if "conv1_1" in params:
            path = out if out.endswith(".npz") else out + ".npz"
            check_output(path, (src,), overwrite=overwrite, kind="file")
            with files.atomic_path(path, ".npz") as tmp, open(tmp, "wb") as f:
                flat = {f"{k}/{leaf}": v for k, p in params.items() for leaf, v in p.items()}
                np.savez(f, **flat)
            return f"VGG19 features ({len(params)} convs) -> {path} (use as --config.vgg_weights)"
    shown = ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in list(sd.items())[:12])
    raise UserError(
        f"{src}: unrecognised layout with {len(sd)} tensors (first: {shown}); supported: "
        f"{methods.supported_weights()} and torchvision VGG19."
    )
