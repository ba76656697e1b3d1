"""VGG19 weight files -> the Flax params of :class:`jaxsr.models.vgg.VGG19Features`.

torchvision's ``vgg19-dcbb9e9d.pth`` (``features.N.{weight,bias}``, read without torch)
or an ``.npz`` of ``conv1_1/kernel`` (HWIO) style arrays, as ``python -m jaxsr.convert``
writes it.
"""

from __future__ import annotations

import jax
import numpy as np
from absl import logging

from jaxsr import files
from jaxsr.errors import UserError
from jaxsr.models.vgg import LAYER_INDEX, WIDTHS, random_vgg19_params, vgg19_layers
from jaxsr.weights.torch_pickle import flat_state_dict, load_torch


def loss_vgg19_params(path: str, layers) -> dict:
    """The frozen VGG19 of a perceptual loss: the weights at ``path``, or a randomly
    initialised network for ``path == 'random'`` (tests and demos, with a warning)."""
    if path == "random":
        logging.warning(
            "Using a RANDOMLY INITIALISED VGG19 for the perceptual loss (vgg_weights="
            "'random'): fine for tests and demos, meaningless for real training."
        )
        return random_vgg19_params(jax.random.key(1), tuple(layers))
    return load_vgg19_params(path, tuple(layers))


def vgg19_params_from_torch(state_dict: dict) -> dict:
    """torchvision ``features.{idx}.{weight,bias}`` (or ``{idx}.*``) -> Flax params."""
    params = {}
    for name, idx in vgg19_layers():
        if not name.startswith("conv"):
            continue
        for prefix in (f"features.{idx}.", f"{idx}.", f"module.features.{idx}."):
            if prefix + "weight" in state_dict:
                w = np.asarray(state_dict[prefix + "weight"], np.float32)
                b = np.asarray(state_dict[prefix + "bias"], np.float32)
                params[name] = {"kernel": w.transpose(2, 3, 1, 0), "bias": b}
                break
    return params


def load_vgg19_params(path: str, layers=("conv5_4",)) -> dict:
    """Pretrained VGG19 params covering ``layers`` from a ``.pth`` or ``.npz`` file.

    ``.pth``: torchvision's ``vgg19-dcbb9e9d.pth`` (state dict with ``features.N.weight``;
    read without torch). ``.npz``: arrays named ``conv1_1/kernel`` (HWIO), ``conv1_1/bias``
    ... or the torchvision names. Raises :class:`UserError` when the file is missing or
    lacks a layer the loss needs.
    """
    if not path or not files.isfile(path):
        raise UserError(
            f"VGG19 weights not found at {path!r}: the perceptual loss needs ImageNet VGG19 "
            "weights, e.g. torchvision's vgg19-dcbb9e9d.pth; set --config.vgg_weights=PATH."
        )
    if path.endswith(".npz"):
        arrays = files.load_numpy(path)
        if any("/" in k for k in arrays):
            params = {}
            for k, v in arrays.items():
                layer, leaf = k.split("/")
                params.setdefault(layer, {})[leaf] = v.astype(np.float32)
        else:
            params = vgg19_params_from_torch(arrays)
    else:
        params = vgg19_params_from_torch(flat_state_dict(load_torch(path)))
    last = max(LAYER_INDEX[name] for name in layers)
    needed = [n for n, i in vgg19_layers() if n.startswith("conv") and i <= last]
    missing = [n for n in needed if n not in params]
    if missing:
        raise UserError(
            f"{path} is not a VGG19 checkpoint with the layers {layers} need: missing {missing}; "
            "expected torchvision's features.N.weight keys or conv1_1/kernel style .npz arrays."
        )
    for name in needed:
        shape = params[name]["kernel"].shape
        if shape[-1] != WIDTHS[int(name[4])] or shape[:2] != (3, 3):
            raise UserError(f"{path}: {name} has shape {shape}; this is not VGG19.")
    return {n: params[n] for n in needed}
