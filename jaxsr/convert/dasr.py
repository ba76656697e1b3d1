"""DASR key map: the official ``model_600.pt`` (a bare ``BlindSR`` state dict) -> jaxsr.

Spec §2.7. The file holds ``G.*`` (the SR network) and ``E.encoder_q.*`` (the query
encoder with its BatchNorm statistics and MLP head); ``encoder_k``, the queue and
its pointer were deleted before saving (a training checkpoint that still has them
converts too: they are ignored). The MeanShift convs are fixed constants in jaxsr;
they are checked, not copied.
"""

from __future__ import annotations

import re

import numpy as np

from jaxsr.convert.common import conv_kernel, dense_kernel
from jaxsr.errors import UserError
from jaxsr.models.dasr import DIV2K_MEAN
from jaxsr.trees import nest

_IGNORED = re.compile(r"^E\.(encoder_k\.|queue)|num_batches_tracked$|^G\.(sub|add)_mean\.")


def is_dasr(sd: dict) -> bool:
    return "G.head.0.weight" in sd and any(k.startswith("E.encoder_q.") for k in sd)


def dasr_config(sd: dict) -> dict:
    """``BlindSR`` constructor arguments read from the tensor shapes."""
    n_feats = sd["G.head.0.weight"].shape[0]
    groups = {int(m.group(1)) for k in sd if (m := re.match(r"G\.body\.(\d+)\.body\.0\.", k))}
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"G\.body\.0\.body\.(\d+)\.da_", k))}
    up = sd["G.tail.0.0.weight"].shape[0]
    scale = 3 if up == 9 * n_feats else (4 if "G.tail.0.2.weight" in sd else 2)
    widths, i = [], 0
    while f"E.encoder_q.E.{3 * i}.weight" in sd:
        widths.append(int(sd[f"E.encoder_q.E.{3 * i}.weight"].shape[0]))
        i += 1
    reduction = n_feats // sd["G.body.0.body.0.da_conv1.ca.conv_du.0.weight"].shape[0]
    return {
        "scale": scale,
        "n_feats": int(n_feats),
        "n_groups": len(groups),
        "n_blocks": len(blocks),
        "reduction": int(reduction),
        "encoder_widths": widths,
    }


def _check_mean_shift(sd: dict) -> None:
    bias = sd.get("G.sub_mean.bias")
    if bias is not None and not np.allclose(
        -np.asarray(bias), 255.0 * np.array(DIV2K_MEAN), atol=1e-3
    ):
        raise UserError(
            f"G.sub_mean.bias is {np.asarray(bias).tolist()}, not -255 × the DIV2K mean: this "
            "DASR was trained with another rgb_range/mean, which jaxsr does not support."
        )


def dasr_variables(sd: dict, origins: dict | None = None) -> dict:
    """Flax variables ``{'params': {'E', 'G'}, 'batch_stats': {'E'}}`` of ``BlindSR``;
    ``origins`` (optional) is filled with ``(collection, *path) -> checkpoint key``."""
    _check_mean_shift(sd)
    cfg = dasr_config(sd)
    nb, ng = cfg["n_blocks"], cfg["n_groups"]
    params, stats, unused = {}, {}, []
    for key, value in sd.items():
        if _IGNORED.search(key):
            continue
        v = np.asarray(value, np.float32)
        path = _g_path(key, nb, ng) if key.startswith("G.") else _e_path(key)
        if path is None:
            unused.append(key)
            continue
        collection, path, kind = path
        if kind == "conv":
            v = conv_kernel(v, key)
        elif kind == "dense":
            v = dense_kernel(v.reshape(v.shape[0], -1), key)  # 1×1 conv weights as Linear
        (params if collection == "params" else stats)[path] = v
        if origins is not None:
            origins[(collection, *path)] = key
    if unused:
        raise UserError(
            f"{len(unused)} DASR tensors have no place in jaxsr's model (first: {unused[:3]}); "
            "is this an official DASR checkpoint?"
        )
    return {"params": nest(params), "batch_stats": nest(stats)}


def _leaf(p: str, weight_kind: str) -> tuple[str, str]:
    """``weight`` -> (``kernel``, how to convert it); ``bias`` is copied as is."""
    return ("kernel", weight_kind) if p == "weight" else ("bias", "copy")


def _g_path(key: str, nb: int, ng: int):
    parts = key.split(".")[1:]
    p = parts[-1]
    if parts[0] in ("head", "compress"):
        leaf, kind = _leaf(p, "conv" if parts[0] == "head" else "dense")
        return "params", ("G", parts[0], leaf), kind
    if parts[0] == "tail":
        name = f"upsample{int(parts[2]) // 2}" if parts[1] == "0" else "tail"
        leaf, kind = _leaf(p, "conv")
        return "params", ("G", name, leaf), kind
    if parts[0] != "body":
        return None
    g = int(parts[1])
    if g == ng:  # the body's closing conv
        leaf, kind = _leaf(p, "conv")
        return "params", ("G", "body_conv", leaf), kind
    b = int(parts[3])
    if b == nb:  # the group's closing conv
        leaf, kind = _leaf(p, "conv")
        return "params", ("G", f"dag{g}", "conv", leaf), kind
    prefix = ("G", f"dag{g}", f"dab{b}")
    rest = parts[4:]
    if rest[0] in ("conv1", "conv2"):
        leaf, kind = _leaf(p, "conv")
        return "params", (*prefix, rest[0], leaf), kind
    da = (*prefix, rest[0])  # da_conv1 / da_conv2
    sub = ".".join(rest[1:-1])
    name = {"kernel.0": "kernel_fc1", "kernel.2": "kernel_fc2", "conv": "conv"}.get(sub)
    name = name or {"ca.conv_du.0": "ca_down", "ca.conv_du.2": "ca_up"}.get(sub)
    if name is None:
        return None
    leaf, kind = _leaf(p, "conv" if name == "conv" else "dense")
    return "params", (*da, name, leaf), kind


def _e_path(key: str):
    m = re.match(r"E\.encoder_q\.E\.(\d+)\.(\w+)$", key)
    if m:
        i, p = int(m.group(1)), m.group(2)
        if i % 3 == 0:
            leaf, kind = _leaf(p, "conv")
            return "params", ("E", f"conv{i // 3}", leaf), kind
        bn = ("E", f"bn{i // 3}")
        return {
            "weight": ("params", (*bn, "scale"), "copy"),
            "bias": ("params", (*bn, "bias"), "copy"),
            "running_mean": ("batch_stats", (*bn, "mean"), "copy"),
            "running_var": ("batch_stats", (*bn, "var"), "copy"),
        }.get(p)
    m = re.match(r"E\.encoder_q\.mlp\.(\d)\.(\w+)$", key)
    if m:
        leaf, kind = _leaf(m.group(2), "dense")
        return "params", ("E", f"mlp{int(m.group(1)) // 2}", leaf), kind
    return None


def architecture(sd: dict):
    """The ``jaxsr.convert`` entry (see :func:`jaxsr.convert.rrdbnet.architecture`)."""
    if not is_dasr(sd):
        return None
    cfg, origins = dasr_config(sd), {}
    size = f"{cfg['n_groups']} groups × {cfg['n_blocks']} blocks, {cfg['n_feats']} features"
    desc = f"DASR ×{cfg['scale']} ({size}) with its degradation encoder"
    return "dasr", cfg, dasr_variables(sd, origins), origins, desc, None
