"""Real-CUGAN's official ``.pth`` layout -> :class:`jaxsr.models.realcugan.RealCUGAN`.

Keys are ``unet1.*`` and ``unet2.*`` (``conv1.conv.0``, ``conv1_down``,
``conv2.seblock.conv1``, ``conv2_up``, ..., ``conv_bottom``) plus ``conv_final`` for ×4.
The scale is read off the shapes: ``conv_final`` means ×4, a 5×5 ``unet1.conv_bottom``
×3, else ×2. A ``pro`` key (the ``pro`` releases store a marker tensor under it) turns on
their input/output mapping. :func:`official_keys` lists every weight in the modules'
order, which is also the order of the layers in the ncnn exports.
"""

from __future__ import annotations

import numpy as np

from jaxsr.convert.common import conv_kernel
from jaxsr.trees import nest

_UNETCONV = ("conv.0", "conv.2")
_SE = ("seblock.conv1", "seblock.conv2")


def official_keys(scale: int) -> list[tuple[str, str]]:
    """``[(module key, kind)]`` in the official module order; kind is ``conv``,
    ``deconv`` or ``se`` (a 1×1 conv of an SE block)."""
    unet1 = [("conv1." + c, "conv") for c in _UNETCONV] + [("conv1_down", "conv")]
    unet1 += [("conv2." + c, "conv") for c in _UNETCONV] + [("conv2." + s, "se") for s in _SE]
    unet1 += [("conv2_up", "deconv"), ("conv3", "conv"), ("conv_bottom", "deconv")]
    unet2 = [("conv1." + c, "conv") for c in _UNETCONV] + [("conv1_down", "conv")]
    for level, after in (("conv2", "conv2_down"), ("conv3", "conv3_up"), ("conv4", "conv4_up")):
        unet2 += [(f"{level}.{c}", "conv") for c in _UNETCONV]
        unet2 += [(f"{level}.{s}", "se") for s in _SE]
        unet2 += [(after, "deconv" if after.endswith("_up") else "conv")]
    unet2 += [("conv5", "conv"), ("conv_bottom", "conv")]
    keys = [(f"unet1.{k}", kind) for k, kind in unet1] + [(f"unet2.{k}", kind) for k, kind in unet2]
    return keys + ([("conv_final", "conv")] if scale == 4 else [])


def _flax_path(key: str) -> tuple[str, ...]:
    return tuple(key.replace("conv.0", "conv_0").replace("conv.2", "conv_2").split("."))


def architecture(sd: dict):
    """The ``jaxsr.convert`` entry, or ``None`` when ``sd`` is not a Real-CUGAN."""
    if "unet1.conv1.conv.0.weight" not in sd or "unet2.conv_bottom.weight" not in sd:
        return None
    if "conv_final.weight" in sd:
        scale = 4
    else:
        scale = 3 if np.shape(sd["unet1.conv_bottom.weight"])[-1] == 5 else 2
    pro = "pro" in sd
    flat, origins = {}, {}
    for key, kind in official_keys(scale):
        for leaf in ("weight", "bias"):
            value = np.asarray(sd[f"{key}.{leaf}"], np.float32)
            if leaf == "weight":
                # PyTorch's ConvTranspose2d weight is (in, out, k, k): the same transpose
                # gives jaxsr's (k, k, in, out).
                value = value.transpose(2, 3, 0, 1) if kind == "deconv" else conv_kernel(value, key)
            path = (*_flax_path(key), "kernel" if leaf == "weight" else "bias")
            flat[path] = value
            origins[("params", *path)] = f"{key}.{leaf}"
    kwargs = dict(scale=scale, pro=pro)
    description = f"Real-CUGAN ×{scale}{' pro' if pro else ''} (UpCunet{scale}x)"
    return "realcugan", kwargs, {"params": nest(flat)}, origins, description, None
