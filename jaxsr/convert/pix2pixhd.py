"""pix2pixHD checkpoints (``{epoch}_net_{G,D,E}.pth``, bare state dicts; spec §4.6).

The official networks are ``nn.Sequential``s whose keys are layer indices. With
``n`` down-samplings and ``b`` residual blocks a G1 / E body has ``conv_in`` at 1,
``down_i`` at ``4+3i``, ``res_j`` at ``4+3n+j`` (``conv_block.1`` / ``.5``), ``up_i``
(ConvTranspose) at ``4+3n+b+3i`` and ``conv_out`` at ``4+6n+b+1``; pads, norms and
activations hold no tensors. The encoder is that body with ``b = 0`` (it is told
apart from a generator by having no residual blocks). A LocalEnhancer adds
``model{k}_1.{1,4}`` and ``model{k}_2.{res…, up, conv_out}``. A discriminator is
``scale{i}_layer{j}.0`` (feature matching on, the default) or ``layer{i}.{k}`` (one
Sequential per scale, ``--no_ganFeat_loss``).
"""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np

from jaxsr.convert.common import conv_kernel, transposed_conv_kernel
from jaxsr.trees import nest

_SEQ = re.compile(r"^model\.(\d+)\.(?:conv_block\.(\d+)\.)?(weight|bias)$")
_LOCAL = re.compile(r"^model(\d+)_([12])\.(\d+)\.(?:conv_block\.(\d+)\.)?(weight|bias)$")
_D_FM = re.compile(r"^scale(\d+)_layer(\d+)\.0\.(weight|bias)$")
_D_SEQ = re.compile(r"^layer(\d+)\.(\d+)\.(weight|bias)$")


def kind(sd: dict) -> str | None:
    """``'global'``, ``'local'``, ``'encoder'``, ``'discriminator'`` or ``None``."""
    keys = list(sd)
    if keys and all(_D_FM.match(k) for k in keys) or keys and all(_D_SEQ.match(k) for k in keys):
        return "discriminator"
    if not keys or "model.1.weight" not in sd:
        return None
    if not all(_SEQ.match(k) or _LOCAL.match(k) for k in keys):
        return None
    if any(_LOCAL.match(k) for k in keys):
        return "local"
    return "global" if any("conv_block" in k for k in keys) else "encoder"


def _body_layout(res: set[int], n_convs3: int) -> tuple[int, int]:
    """``(n_downsampling, n_blocks)`` of a G1/E body from its key indices."""
    if res:
        return (min(res) - 4) // 3, len(res)
    return n_convs3 // 2, 0


def _body(sd: dict, prefix: str, *, last: bool):
    """``{index: (name, is_transposed)}`` and the body's sizes for ``prefix.{idx}`` keys."""
    seq = {k: _SEQ.match(k) for k in sd if k.startswith(prefix)}
    res = {int(m.group(1)) for m in seq.values() if m and m.group(2)}
    convs3 = {
        int(m.group(1))
        for k, m in seq.items()
        if m and not m.group(2) and m.group(3) == "weight" and np.shape(sd[k])[-1] == 3
    }
    n, b = _body_layout(res, len(convs3))
    names = {1: ("conv_in", False)}
    for i in range(n):
        names[4 + 3 * i] = (f"down_{i}", False)
        names[4 + 3 * n + b + 3 * i] = (f"up_{i}", True)
    for j in range(b):
        names[4 + 3 * n + j] = (f"res_{j}", False)
    if last:
        names[4 + 6 * n + b + 1] = ("conv_out", False)
    return names, n, b


def _tensor(value, leaf: str, transposed: bool, key: str):
    value = np.asarray(value, np.float32)
    if leaf == "bias":
        return value
    return transposed_conv_kernel(value, key) if transposed else conv_kernel(value, key)


def _leaf(name: str) -> str:
    return {"weight": "kernel", "bias": "bias"}[name]


def _convert_body(sd, names, flat, origins, root: tuple):
    for key, value in sd.items():
        m = _SEQ.match(key)
        if not m or int(m.group(1)) not in names:
            raise ValueError(f"unexpected key {key}")
        name, transposed = names[int(m.group(1))]
        path = (*root, name)
        if m.group(2):
            path += ({"1": "conv1", "5": "conv2"}[m.group(2)],)
        path += (_leaf(m.group(3)),)
        flat[path] = _tensor(value, m.group(3), transposed, key)
        origins[("params", *path)] = key


def generator_config(sd: dict) -> tuple[str, dict, int]:
    """``(model name, kwargs, input channels)`` of a G1, LocalEnhancer or E state dict."""
    what = kind(sd)
    first = np.shape(sd["model.1.weight"])
    if what == "local":
        ks = [_LOCAL.match(k) for k in sd]
        n_local = max(int(m.group(1)) for m in ks if m)
        names, n, b = _body({k: v for k, v in sd.items() if _SEQ.match(k)}, "model.", last=False)
        last_front = np.shape(sd[f"model{n_local}_1.1.weight"])
        res = {
            int(m.group(3))
            for m in ks
            if m and m.group(1) == str(n_local) and m.group(2) == "2" and m.group(4)
        }
        kwargs = dict(
            output_nc=int(np.shape(sd[f"model{n_local}_2.{len(res) + 4}.weight"])[0]),
            ngf=int(last_front[0]),
            n_downsample_global=n,
            n_blocks_global=b,
            n_local_enhancers=n_local,
            n_blocks_local=len(res),
        )
        return "pix2pixhd_local", kwargs, int(last_front[1])
    names, n, b = _body(sd, "model.", last=True)
    out_nc = int(np.shape(sd[f"model.{max(names)}.weight"])[0])
    kwargs = dict(output_nc=out_nc, ngf=int(first[0]), n_downsampling=n)
    if what == "encoder":
        return "pix2pixhd_encoder", kwargs, int(first[1])
    return "pix2pixhd_global", {**kwargs, "n_blocks": b}, int(first[1])


def generator_params(sd: dict, origins: dict) -> dict:
    """Flax params of the generator / encoder ``sd`` holds (``origins`` filled)."""
    flat: dict = {}
    if kind(sd) != "local":
        names, _, _ = _body(sd, "model.", last=True)
        _convert_body(sd, names, flat, origins, ())
        return nest(flat)
    body = {k: v for k, v in sd.items() if _SEQ.match(k)}
    names, _, _ = _body(body, "model.", last=False)
    _convert_body(body, names, flat, origins, ("global",))
    for key, value in sd.items():
        m = _LOCAL.match(key)
        if not m:
            continue
        enh, part, idx, block, leaf = m.groups()
        idx = int(idx)
        n_res = len({k for k in sd if k.startswith(f"model{enh}_2.") and "conv_block" in k}) // 4
        if part == "1":
            name, transposed = {1: "conv_in", 4: "down"}[idx], False
        elif block:
            name, transposed = f"res_{idx}", False
        else:
            name, transposed = {n_res: ("up", True), n_res + 4: ("conv_out", False)}[idx]
        path = (f"model{enh}_{part}", name)
        if block:
            path += ({"1": "conv1", "5": "conv2"}[block],)
        path += (_leaf(leaf),)
        flat[path] = _tensor(value, leaf, transposed, key)
        origins[("params", *path)] = key
    return nest(flat)


def _d_conv_index(n_layers: int) -> dict[int, int]:
    """``layer{i}.{k}`` Sequential index k of each layer's conv (one Sequential per scale)."""
    return {0: 0, **{n: 2 + 3 * (n - 1) for n in range(1, n_layers + 2)}}


def discriminator_config(sd: dict) -> tuple[dict, int]:
    """``(kwargs, input channels)`` of a MultiscaleDiscriminator state dict."""
    fm = [m.groups() for m in map(_D_FM.match, sd) if m]
    if fm:
        num_d = 1 + max(int(s) for s, _, _ in fm)
        n_layers = max(int(j) for _, j, _ in fm) - 1
        first = np.shape(sd["scale0_layer0.0.weight"])
    else:
        seq = [m.groups() for m in map(_D_SEQ.match, sd)]
        num_d = 1 + max(int(s) for s, _, _ in seq)
        n_convs = len({k for s, k, _ in seq if s == "0"})
        n_layers = n_convs - 2
        first = np.shape(sd["layer0.0.weight"])
    return {"num_D": num_d, "ndf": int(first[0]), "n_layers": n_layers}, int(first[1])


def discriminator_params(sd: dict, origins: dict) -> dict:
    cfg, _ = discriminator_config(sd)
    by_index = {k: j for j, k in _d_conv_index(cfg["n_layers"]).items()}
    flat = {}
    for key, value in sd.items():
        m = _D_FM.match(key)
        if m:
            scale, layer, leaf = m.groups()
        else:
            scale, idx, leaf = _D_SEQ.match(key).groups()
            layer = by_index[int(idx)]
        path = (f"scale{scale}", f"layer{layer}", _leaf(leaf))
        flat[path] = _tensor(value, leaf, False, key)
        origins[("params", *path)] = key
    return nest(flat)


def architecture(sd: dict):
    """``(name, kwargs, variables, origins, description, example inputs)`` or ``None``."""
    what = kind(sd)
    if what is None:
        return None
    origins: dict = {}
    if what == "discriminator":
        kwargs, in_ch = discriminator_config(sd)
        variables = {"params": discriminator_params(sd, origins)}
        desc = (
            f"pix2pixHD MultiscaleDiscriminator (num_D {kwargs['num_D']}, ndf {kwargs['ndf']}, "
            f"{in_ch} input channels)"
        )
        return "pix2pixhd_discriminator", kwargs, variables, origins, desc, (_zeros(in_ch, 64),)
    name, kwargs, in_ch = generator_config(sd)
    variables = {"params": generator_params(sd, origins)}
    depth = kwargs.get("n_downsampling", kwargs.get("n_downsample_global", 0))
    side = 2 ** (depth + kwargs.get("n_local_enhancers", 0))
    if name == "pix2pixhd_encoder":
        inputs = (_zeros(in_ch, side), jnp.zeros((1, side, side), jnp.int32))
        desc = (
            f"pix2pixHD instance feature Encoder (nef {kwargs['ngf']}, "
            f"{kwargs['output_nc']} features)"
        )
    else:
        inputs = (_zeros(in_ch, side),)
        what = "LocalEnhancer (G1+G2)" if name == "pix2pixhd_local" else "GlobalGenerator (G1)"
        desc = f"pix2pixHD {what}, ngf {kwargs['ngf']}, {in_ch} input channels"
    return name, kwargs, variables, origins, desc, inputs


def _zeros(channels: int, side: int):
    return jnp.zeros((1, side, side, channels), jnp.float32)
