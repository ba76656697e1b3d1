"""SFTGAN generator checkpoints (``SFTGAN_bicx4_noBN_OST_bg.pth``, a bare state dict; spec §5.3).

Keys are the PyTorch attribute paths: ``conv0``, ``sft_branch.{i}.{sft0,sft1}.
SFT_{scale,shift}_conv{0,1}``, ``sft_branch.{i}.conv{0,1}``, ``sft_branch.{n}`` (the
last SFT layer), ``sft_branch.{n+1}`` (conv), ``HR_branch.{0,3,6,8}``,
``CondNet.{0,2,4,6,8}``. jaxsr's :class:`~jaxsr.models.sftgan.SFTNet` names its
modules the same way with a Sequential's index joined by ``_``.
"""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np

from jaxsr.convert.common import conv_kernel
from jaxsr.trees import nest


def is_sftgan(sd: dict) -> bool:
    return "CondNet.0.weight" in sd and "sft_branch.0.sft0.SFT_scale_conv0.weight" in sd


def sftgan_config(sd: dict) -> dict:
    """Model kwargs read off the shapes (the CondNet's first conv has stride = scale)."""
    cond0 = np.shape(sd["CondNet.0.weight"])
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"sft_branch\.(\d+)\.sft0\.", k))}
    return dict(
        scale=int(cond0[-1]),
        num_feat=int(np.shape(sd["conv0.weight"])[0]),
        num_block=len(blocks),
        num_classes=int(cond0[1]),
        cond_ch=int(np.shape(sd["CondNet.8.weight"])[0]),
        num_in_ch=int(np.shape(sd["conv0.weight"])[1]),
        num_out_ch=int(
            np.shape(
                sd[
                    max(
                        (k for k in sd if k.startswith("HR_branch.") and k.endswith(".weight")),
                        key=lambda k: int(k.split(".")[1]),
                    )
                ]
            )[0]
        ),
    )


def flax_path(key: str) -> tuple[str, ...]:
    """``'sft_branch.3.sft0.SFT_scale_conv0.weight'`` -> ``('sft_branch_3', 'sft0',
    'SFT_scale_conv0', 'kernel')``: a Sequential index joins the name before it."""
    parts: list[str] = []
    for part in key.split("."):
        if part.isdigit():
            parts[-1] = f"{parts[-1]}_{part}"
        else:
            parts.append(part)
    parts[-1] = {"weight": "kernel", "bias": "bias"}[parts[-1]]
    return tuple(parts)


def sftgan_params(sd: dict, origins: dict | None = None) -> dict:
    """Flax params of :class:`jaxsr.models.sftgan.SFTNet` (``origins`` as in rrdbnet)."""
    flat = {}
    for key, value in sd.items():
        path = flax_path(key)
        value = np.asarray(value, np.float32)
        flat[path] = conv_kernel(value, key) if path[-1] == "kernel" else value
        if origins is not None:
            origins[("params", *path)] = key
    return nest(flat)


def architecture(sd: dict):
    """The ``jaxsr.convert`` entry: ``(name, kwargs, variables, origins, description,
    example inputs)`` or ``None`` when ``sd`` is not an SFTGAN generator."""
    if not is_sftgan(sd):
        return None
    cfg = sftgan_config(sd)
    origins: dict = {}
    variables = {"params": sftgan_params(sd, origins)}
    s = cfg["scale"]
    inputs = (
        jnp.zeros((1, 8, 8, cfg["num_in_ch"]), jnp.float32),
        jnp.zeros((1, 8 * s, 8 * s, cfg["num_classes"]), jnp.float32),
    )
    desc = (
        f"SFTGAN ×{s} ({cfg['num_block']} ResBlock_SFT, {cfg['num_feat']} features, "
        f"{cfg['num_classes']}-class prior)"
    )
    return "sftgan", cfg, variables, origins, desc, inputs
