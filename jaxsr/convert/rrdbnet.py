"""RRDBNet (ESRGAN) key maps: the three official naming schemes -> jaxsr params.

Spec §1.6. All three store the same 702 tensors:

* 2018 ``architecture.py``: ``model.0``, ``model.1.sub.{i}.RDB{r}.conv{j}.0``,
  ``model.1.sub.{nb}`` (trunk conv), ``model.3/6/8/10``;
* ESRGAN repo after 2019: ``conv_first``, ``RRDB_trunk.{i}.RDB{r}.conv{j}``,
  ``trunk_conv``, ``upconv1/2``, ``HRconv``, ``conv_last``;
* BasicSR: ``conv_first``, ``body.{i}.rdb{r}.conv{j}``, ``conv_body``,
  ``conv_up1/2``, ``conv_hr``, ``conv_last``.

Everything is first renamed to the BasicSR scheme, whose names jaxsr's RRDBNet uses.
"""

from __future__ import annotations

import re

import numpy as np

from jaxsr.convert.common import conv_kernel
from jaxsr.trees import nest

_ESRGAN_2019 = {
    "trunk_conv": "conv_body",
    "upconv1": "conv_up1",
    "upconv2": "conv_up2",
    "HRconv": "conv_hr",
}


def _to_basicsr_names(sd: dict) -> dict:
    keys = list(sd)
    if any(k.startswith("model.1.sub.") for k in keys):  # 2018 sequential layout
        nb = max(int(m.group(1)) for k in keys if (m := re.match(r"model\.1\.sub\.(\d+)\.", k)))
        out = {}
        for k, v in sd.items():
            if m := re.match(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(\w+)$", k):
                i, r, j, p = m.groups()
                out[f"body.{i}.rdb{r}.conv{j}.{p}"] = v
            elif m := re.match(rf"model\.1\.sub\.{nb}\.(\w+)$", k):
                out[f"conv_body.{m.group(1)}"] = v
            else:
                top = {"0": "conv_first", "3": "conv_up1", "6": "conv_up2", "8": "conv_hr"}
                m = re.match(r"model\.(\d+)\.(\w+)$", k)
                if not m:
                    raise ValueError(f"Unexpected key {k!r} in a 2018-style ESRGAN checkpoint.")
                idx, p = m.groups()
                out[f"{top.get(idx, 'conv_last')}.{p}"] = v
        return out
    if any(k.startswith("RRDB_trunk.") for k in keys):  # ESRGAN repo, 2019+
        out = {}
        for k, v in sd.items():
            k = re.sub(r"^RRDB_trunk\.(\d+)\.RDB(\d)\.", r"body.\1.rdb\2.", k)
            head, _, rest = k.partition(".")
            out[f"{_ESRGAN_2019.get(head, head)}.{rest}"] = v
        return out
    return dict(sd)


def is_rrdbnet(sd: dict) -> bool:
    keys = set(_to_basicsr_names(sd))
    return "conv_first.weight" in keys and "conv_body.weight" in keys and "conv_hr.weight" in keys


def rrdbnet_config(sd: dict) -> dict:
    """Model kwargs (scale, num_feat, num_block, num_grow_ch, channels) read off the shapes."""
    sd = _to_basicsr_names(sd)
    first = np.shape(sd["conv_first.weight"])
    num_feat, in_ch = first[0], first[1]
    out_ch = np.shape(sd["conv_last.weight"])[0]
    num_block = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("body."))
    num_grow_ch = np.shape(sd["body.0.rdb1.conv1.weight"])[0]
    # Pixel-unshuffle multiplies the input channels by 4 (×2) or 16 (×1).
    ratio = in_ch // out_ch
    scale = {1: 4, 4: 2, 16: 1}.get(ratio)
    if scale is None:
        raise ValueError(f"conv_first takes {in_ch} channels for {out_ch} outputs; not an RRDBNet.")
    return dict(
        scale=scale,
        num_feat=int(num_feat),
        num_block=int(num_block),
        num_grow_ch=int(num_grow_ch),
        num_in_ch=int(out_ch),
        num_out_ch=int(out_ch),
    )


def rrdbnet_params(sd: dict, origins: dict | None = None) -> dict:
    """Flax params of :class:`jaxsr.models.RRDBNet` from any of the three key schemes.

    ``origins`` (optional) is filled with ``('params', *path) -> checkpoint key``."""
    flat = {}
    original = _to_basicsr_names({k: k for k in sd})  # renamed key -> the file's key
    for key, value in _to_basicsr_names(sd).items():
        parts = key.split(".")
        leaf = {"weight": "kernel", "bias": "bias"}[parts[-1]]
        value = np.asarray(value, np.float32)
        value = conv_kernel(value, key) if leaf == "kernel" else value
        if parts[0] == "body":  # body.{i}.rdb{r}.conv{j} -> body_{i}/rdb{r}/conv{j}
            path = (f"body_{parts[1]}", *parts[2:-1], leaf)
        else:
            path = (*parts[:-1], leaf)
        flat[path] = value
        if origins is not None:
            origins[("params", *path)] = original[key]
    return nest(flat)


def architecture(sd: dict):
    """The ``jaxsr.convert`` entry: ``(name, kwargs, variables, origins, description,
    example inputs)``, or ``None`` when ``sd`` is not an RRDBNet."""
    if not is_rrdbnet(sd):
        return None
    cfg, origins = rrdbnet_config(sd), {}
    size = f"nf={cfg['num_feat']}, nb={cfg['num_block']}, gc={cfg['num_grow_ch']}"
    variables = {"params": rrdbnet_params(sd, origins)}
    return "rrdbnet", cfg, variables, origins, f"RRDBNet ×{cfg['scale']} ({size})", None
