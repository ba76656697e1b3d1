"""Real-ESRGAN's own networks → jaxsr: SRVGGNetCompact and the U-Net discriminator
(its RRDBNet generators go through :mod:`jaxsr.convert.rrdbnet`).

SRVGGNetCompact (``realesr-general-x4v3``, ``realesr-animevideov3``) is
``body.{i}.weight|bias`` of one ``nn.ModuleList``: convs sit at even indices, PReLU
slopes (one ``weight`` vector, no bias) at the odd ones after them; the last conv has
``3·s²`` outputs. The block count, width, scale and activation are read off the shapes
(ReLU and LeakyReLU leave no tensor, so a body whose odd indices hold nothing is
reported as ReLU: the file cannot tell them apart).
"""

from __future__ import annotations

import math
import re

import numpy as np

from jaxsr.convert.common import conv_kernel
from jaxsr.trees import nest


def _indices(sd: dict) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for key in sd:
        m = re.fullmatch(r"body\.(\d+)\.(weight|bias)", key)
        if m is None:
            return {}
        out.setdefault(int(m.group(1)), {})[m.group(2)] = key
    return out


def architecture(sd: dict):
    """The ``jaxsr.convert`` entry, or ``None`` when ``sd`` is neither network."""
    return _srvgg(sd) or _unet_discriminator(sd)


def _srvgg(sd: dict):
    layers = _indices(sd)
    if not layers or 0 not in layers or np.ndim(sd[layers[0]["weight"]]) != 4:
        return None
    convs = sorted(i for i, p in layers.items() if np.ndim(sd[p["weight"]]) == 4)
    prelus = sorted(i for i, p in layers.items() if np.ndim(sd[p["weight"]]) == 1)
    last = convs[-1]
    num_conv = len(convs) - 2
    missing = [f"body.{i}.weight" for i in range(0, last + 1, 2) if i not in convs]
    if prelus:
        missing += [f"body.{i}.weight" for i in range(1, last, 2) if i not in prelus]
    missing += [f"body.{i}.bias" for i in convs if "bias" not in layers[i]]
    if missing:  # every key is body.N: an SRVGGNetCompact with tensors missing
        raise ValueError(f"missing {', '.join(sorted(missing)[:4])}")
    if prelus not in ([], list(range(1, last, 2))):
        return None
    first, final = np.shape(sd[layers[0]["weight"]]), np.shape(sd[layers[last]["weight"]])
    num_feat, num_in = int(first[0]), int(first[1])
    scale = math.isqrt(final[0] // num_in)
    if scale * scale * num_in != final[0]:
        return None
    kwargs = dict(
        num_in_ch=num_in,
        num_out_ch=num_in,
        num_feat=num_feat,
        num_conv=num_conv,
        upscale=scale,
        act_type="prelu" if prelus else "relu",
    )
    flat, origins = {}, {}
    for i, parts in layers.items():
        for kind, key in parts.items():
            value = np.asarray(sd[key], np.float32)
            if i in prelus:
                path = (f"body_{i}", "weight")
            elif kind == "weight":
                path, value = (f"body_{i}", "kernel"), conv_kernel(value, key)
            else:
                path = (f"body_{i}", "bias")
            flat[path] = value
            origins[("params", *path)] = key
    description = f"SRVGGNetCompact ×{scale} ({num_conv} convs of {num_feat}, {kwargs['act_type']})"
    return "srvgg", kwargs, {"params": nest(flat)}, origins, description, None


_UNET_CONVS = tuple(f"conv{i}" for i in range(10))


def _unet_discriminator(sd: dict):
    """``UNetDiscriminatorSN``: ``conv0``/``conv9`` plain (weight, bias); ``conv1``–``conv8``
    spectrally normalised (``weight_orig``, ``weight_u``, ``weight_v``, no bias)."""
    if not {"conv0.weight", "conv1.weight_orig", "conv1.weight_u", "conv9.weight"} <= set(sd):
        return None
    expected = {f"{n}.{p}" for n in ("conv0", "conv9") for p in ("weight", "bias")}
    expected |= {
        f"{n}.{p}" for n in _UNET_CONVS[1:9] for p in ("weight_orig", "weight_u", "weight_v")
    }
    missing, extra = sorted(expected - set(sd)), sorted(set(sd) - expected)
    if missing or extra:
        parts = [f"missing {', '.join(missing[:4])}"] * bool(missing)
        parts += [f"unexpected {', '.join(extra[:4])}"] * bool(extra)
        raise ValueError("; ".join(parts))
    flat, origins = {}, {}
    for name in _UNET_CONVS:
        if name in ("conv0", "conv9"):
            items = {("params", name, "kernel"): f"{name}.weight"}
            items[("params", name, "bias")] = f"{name}.bias"
        else:
            items = {
                ("params", name, "kernel"): f"{name}.weight_orig",
                ("spectral", name, "u"): f"{name}.weight_u",
                ("spectral", name, "v"): f"{name}.weight_v",
            }
        for path, key in items.items():
            value = np.asarray(sd[key], np.float32)
            flat[path] = conv_kernel(value, key) if path[-1] == "kernel" else value
            origins[path] = key
    num_in, num_feat = int(np.shape(sd["conv0.weight"])[1]), int(np.shape(sd["conv0.weight"])[0])
    # Without the skips the file is the same; the released model has them (the default).
    kwargs = dict(num_in_ch=num_in, num_feat=num_feat, skip_connection=True)
    description = f"UNetDiscriminatorSN (num_feat={num_feat})"
    return "unet_discriminator_sn", kwargs, nest(flat), origins, description, None
