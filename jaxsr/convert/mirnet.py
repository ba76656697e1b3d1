"""MIRNet key map: the released checkpoints -> jaxsr (spec §3.6–3.7).

The official files are ``{'epoch', 'state_dict', 'optimizer'}`` with ``module.``
prefixes (unwrapped by the caller). The state dict repeats shared tensors under
several keys; jaxsr keeps each once and checks the copies agree:

* ``blocks.{j}.1.*`` is the same DAU as ``blocks.{j}.0.*``;
* every DAU's ``body.1.weight`` is the one network-wide PReLU slope (``dau_prelu``);
* the ``filt`` buffers are the fixed binomial blur, checked and dropped.
"""

from __future__ import annotations

import re

import numpy as np

from jaxsr.convert.common import conv_kernel, transposed_conv_kernel
from jaxsr.errors import UserError
from jaxsr.trees import nest

_DAU = {
    "body.0.weight": "conv0",
    "body.2.weight": "conv2",
    "SA.spatial.conv.weight": "sa",
    "CA.conv_du.0.weight": "ca_down",
    "CA.conv_du.2.weight": "ca_up",
    "conv1x1.weight": "conv1x1",
}
_RESAMPLE = {
    "top.0.weight": ("top0", "conv"),
    "top.1.weight": ("prelu0", "prelu"),
    "top.2.weight": ("top2", None),  # conv (down) or transposed conv (up)
    "top.3.weight": ("prelu1", "prelu"),
    "top.4.weight": ("top4", "conv"),  # up only
    "top.5.weight": ("top5", "conv"),  # down only
    "bot.1.weight": ("bot1", "conv"),
}


def is_mirnet(sd: dict) -> bool:
    return "conv_in.weight" in sd and any(".blocks.0.0.body.0.weight" in k for k in sd)


def mirnet_config(sd: dict) -> dict:
    rrgs = {int(m.group(1)) for k in sd if (m := re.match(r"body\.(\d+)\.body\.\d+\.blocks", k))}
    mrbs = {int(m.group(1)) for k in sd if (m := re.match(r"body\.0\.body\.(\d+)\.blocks", k))}
    height = {int(m.group(1)) for k in sd if (m := re.match(r"body\.0\.body\.0\.blocks\.(\d+)", k))}
    return {
        "n_feat": int(sd["conv_in.weight"].shape[0]),
        "n_rrg": len(rrgs),
        "n_mrb": len(mrbs),
        "height": len(height),
    }


def _same(sd: dict, keys: list[str], what: str) -> np.ndarray:
    first = np.asarray(sd[keys[0]], np.float32)
    for k in keys[1:]:
        if not np.array_equal(first, np.asarray(sd[k], np.float32)):
            raise UserError(
                f"{what}: {keys[0]} and {k} differ, but the official MIRNet shares them; "
                "this checkpoint comes from a different architecture."
            )
    return first


def mirnet_params(sd: dict, origins: dict | None = None) -> dict:
    """Flax params of :class:`jaxsr.models.MIRNet`, shared tensors once; ``origins``
    (optional) is filled with ``('params', *path) -> checkpoint key``."""
    cfg = mirnet_config(sd)
    flat: dict[tuple[str, ...], np.ndarray] = {}
    prelus = sorted(k for k in sd if re.search(r"\.blocks\.\d+\.\d+\.body\.1\.weight$", k))
    flat[("dau_prelu",)] = _same(sd, prelus, "DAU PReLU")
    origin = {("dau_prelu",): prelus[0]} if prelus else {}
    binomial = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0
    unused = []
    for key, value in sd.items():
        v = np.asarray(value, np.float32)
        if key.endswith(".filt"):
            if not np.allclose(v, binomial[None, None], atol=1e-6):
                raise UserError(f"{key} is not the binomial [1,2,1] blur filter MIRNet uses.")
            continue
        if key in ("conv_in.weight", "conv_out.weight"):
            flat[(key.split(".")[0], "kernel")] = conv_kernel(v, key)
            origin[(key.split(".")[0], "kernel")] = key
            continue
        m = re.match(r"body\.(\d+)\.body\.(\d+)\.(.+)$", key)
        if not m:
            unused.append(key)
            continue
        r, i, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        if i == cfg["n_mrb"] and rest == "weight":
            flat[(f"rrg{r}_conv", "kernel")] = conv_kernel(v, key)
            origin[(f"rrg{r}_conv", "kernel")] = key
            continue
        entry = _mrb_entry(rest, v, sd, key)
        if entry is None:
            unused.append(key)
        elif entry:  # () marks a shared copy, already taken from its first key
            path, arr = entry
            flat[(f"rrg{r}_mrb{i}", *path)] = arr
            origin[(f"rrg{r}_mrb{i}", *path)] = key
    if unused:
        raise UserError(
            f"{len(unused)} MIRNet tensors have no place in jaxsr's model (first: {unused[:3]})."
        )
    if origins is not None:
        origins.update({("params", *path): key for path, key in origin.items()})
    return nest(flat)


def _mrb_entry(rest: str, v: np.ndarray, sd: dict, key: str):
    """``(Flax path inside one MRB, converted array)`` for the key suffix ``rest``;
    ``()`` for a shared duplicate; ``None`` for an unknown key."""
    if m := re.match(r"blocks\.(\d+)\.(\d+)\.(.+)$", rest):
        j, w, leaf = m.groups()
        if leaf == "body.1.weight":
            return ()  # the network-wide DAU PReLU, taken above
        if leaf not in _DAU:
            return None
        if w != "0":  # the same DAU object as column 0
            _same(sd, [key.replace(f".blocks.{j}.{w}.", f".blocks.{j}.0."), key], "DAU")
            return ()
        return (f"dau{j}", _DAU[leaf], "kernel"), conv_kernel(v, key)
    if m := re.match(r"selective_kernel\.(\d+)\.(.+)$", rest):
        j, leaf = m.groups()
        if leaf == "conv_du.0.weight":
            return (f"skff{j}", "conv_du", "kernel"), conv_kernel(v, key)
        if leaf == "conv_du.1.weight":
            return (f"skff{j}", "prelu", "weight"), v
        if fc := re.match(r"fcs\.(\d+)\.weight$", leaf):
            return (f"skff{j}", f"fc{fc.group(1)}", "kernel"), conv_kernel(v, key)
        return None
    if m := re.match(r"(down|up|last_up)\.(\w+?)\.body\.(\d+)\.(.+)$", rest):
        kind, name, stage, leaf = m.groups()
        if leaf not in _RESAMPLE:
            return None
        module = f"last_up_{name}" if kind == "last_up" else f"{kind}_{name}"
        target, how = _RESAMPLE[leaf]
        if how == "prelu":
            return (module, f"stage{stage}", target, "weight"), v
        if how is None and kind != "down":
            return (module, f"stage{stage}", target, "kernel"), transposed_conv_kernel(v)
        return (module, f"stage{stage}", target, "kernel"), conv_kernel(v, key)
    if rest == "conv_out.weight":
        return ("conv_out", "kernel"), conv_kernel(v, key)
    return None


def architecture(sd: dict):
    """The ``jaxsr.convert`` entry (see :func:`jaxsr.convert.rrdbnet.architecture`)."""
    if not is_mirnet(sd):
        return None
    cfg, origins = mirnet_config(sd), {}
    desc = f"MIRNet ({cfg['n_rrg']} RRGs × {cfg['n_mrb']} MRBs, {cfg['n_feat']} features)"
    return "mirnet", cfg, {"params": mirnet_params(sd, origins)}, origins, desc, None
