"""ncnn graphs (``.param`` + ``.bin``) -> the official PyTorch key layout.

The ncnn files of Real-ESRGAN-ncnn-vulkan and RealSR-ncnn-vulkan are exports of the
official PyTorch networks: their weight layers come in the modules' order, with no
names. This module recognises the network from the graph, checks it layer by layer
against the layers that network must have (kernel, stride, padding, fused activation,
residual coefficients, resizes), and names the weights as the official ``.pth`` does,
so that the registered converters (:mod:`jaxsr.convert.rrdbnet`,
:mod:`jaxsr.convert.realesrgan`) map and check them exactly as for a ``.pth``.

Recognised: RRDBNet ×4 of any block count (``realesrgan-x4plus``, ``-x4plus-anime``,
RealSR DF2K), SRVGGNetCompact of any conv count (``realesr-animevideov3``), with the
bicubic resize that the ×2/×3 releases append to the ×4 network (``final_scale``), and
Real-CUGAN ×2/×3/×4 (realcugan-ncnn-vulkan's ``se`` and ``pro`` models).
"""

from __future__ import annotations

import os

import numpy as np

from jaxsr.convert.realcugan import official_keys
from jaxsr.errors import UserError
from jaxsr.weights.ncnn import Layer

# Layers that only route blobs; the recognisers compare every other layer.
_ROUTING = ("Input", "Split", "Concat")
_LEAKY = (2, (0.2,))  # fused LeakyReLU(0.2): 9=2 -23310=1,0.2
_NO_ACT = (0, ())


def signature(layer: Layer) -> tuple:
    """What a layer computes, as far as the recognisers compare it."""
    p = layer.params
    if layer.type == "Convolution":
        act = (p.get(9, 0), tuple(round(v, 6) for v in p.get(10, [])))
        k, stride, pad = p.get(1, 0), p.get(3, 1), p.get(4, 0)
        dilation = p.get(2, 1)
        square = p.get(11, k) == k and p.get(13, stride) == stride and p.get(14, pad) == pad
        return ("Convolution", k if square else None, stride, pad, dilation, act)
    if layer.type == "Interp":
        return ("Interp", p.get(0, 0), round(p.get(1, 1.0), 6), round(p.get(2, 1.0), 6))
    if layer.type == "Eltwise":
        return ("Eltwise", p.get(0, 0), tuple(round(v, 6) for v in p.get(1, [])))
    if layer.type in ("BinaryOp", "PixelShuffle"):
        return (layer.type, p.get(0, 0))
    return (layer.type,)


def _conv(act=_NO_ACT, k=3):
    return ("Convolution", k, 1, k // 2, 1, act)


def _compare(src: str, family: str, layers: list[Layer], expected: list[tuple]) -> None:
    """Refuse in one sentence at the first layer that is not the one ``family`` has."""
    for i, layer in enumerate(layers):
        want = expected[i] if i < len(expected) else None
        if signature(layer) != want:
            wanted = "nothing more" if want is None else f"{want[0]} {want[1:]}"
            raise UserError(
                f"{src}: layer {layer.name} (line {layer.line}) does not fit a {family}: it is "
                f"{layer.type} {signature(layer)[1:]}, where {wanted} was expected; jaxsr "
                "imports ncnn RRDBNet ×4, SRVGGNetCompact and Real-CUGAN graphs."
            )
    if len(layers) < len(expected):
        raise UserError(
            f"{src}: the graph ends after {len(layers)} layers, where a {family} needs "
            f"{len(expected)}; the file is cut short."
        )


def _conv_weight(src: str, layer: Layer, k: int) -> np.ndarray:
    n_out, w = layer.params[0], layer.weights["weight"]
    n_in = w.size // (n_out * k * k)
    if n_in * n_out * k * k != w.size:
        raise UserError(
            f"{src}: layer {layer.name} (line {layer.line}) holds {w.size} weights, not a "
            f"multiple of {n_out}×{k}×{k}; the file is damaged."
        )
    return w.reshape(n_out, n_in, k, k)


def _put(sd: dict, src: str, key: str, layer: Layer, k: int = 3) -> None:
    sd[f"{key}.weight"] = _conv_weight(src, layer, k)
    if "bias" in layer.weights:
        sd[f"{key}.bias"] = layer.weights["bias"]


def _rrdbnet(src: str, layers: list[Layer]) -> dict:
    n_conv = sum(1 for layer in layers if layer.type == "Convolution")
    blocks = (n_conv - 6) // 15
    rdb = [_conv(_LEAKY)] * 4 + [_conv(), ("Eltwise", 1, (0.2, 1.0))]
    expected = [_conv()] + (rdb * 3 + [("Eltwise", 1, (0.2, 1.0))]) * blocks
    expected += [_conv(), ("BinaryOp", 0)]
    expected += [("Interp", 1, 2.0, 2.0), _conv(_LEAKY)] * 2 + [_conv(_LEAKY), _conv()]
    _compare(src, "RRDBNet ×4", layers, expected)
    convs = iter(layer for layer in layers if layer.type == "Convolution")
    sd: dict = {}
    _put(sd, src, "conv_first", next(convs))
    for b in range(blocks):
        for r in range(1, 4):
            for c in range(1, 6):
                _put(sd, src, f"body.{b}.rdb{r}.conv{c}", next(convs))
    for key in ("conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"):
        _put(sd, src, key, next(convs))
    return sd


def _srvgg(src: str, layers: list[Layer]) -> tuple[dict, int]:
    n_conv = sum(1 for layer in layers if layer.type == "Convolution") - 2
    shuffle = next((layer for layer in layers if layer.type == "PixelShuffle"), None)
    s = shuffle.params.get(0, 0) if shuffle else 0
    expected = [_conv(), ("PReLU",)] * (n_conv + 1) + [_conv(), ("PixelShuffle", s)]
    expected += [("Interp", 1, float(s), float(s)), ("BinaryOp", 0)]
    final_scale = 0
    last = layers[len(expected)] if len(layers) > len(expected) else None
    if last is not None and last.type == "Interp" and last.params.get(0) == 3:
        # The ×2/×3 releases are the ×4 network resized by ncnn's bicubic (s·f = 2 or 3).
        factor = last.params.get(1, 1.0)
        final_scale = int(round(s * factor))
        if abs(final_scale - s * factor) > 1e-4 or not 1 <= final_scale < s:
            final_scale = 0
        else:
            expected.append(("Interp", 3, round(factor, 6), round(factor, 6)))
    _compare(src, "SRVGGNetCompact", layers, expected)
    sd: dict = {}
    weighted = [layer for layer in layers if layer.type in ("Convolution", "PReLU")]
    for i, layer in enumerate(weighted):
        if layer.type == "PReLU":
            sd[f"body.{i}.weight"] = layer.weights["slope"]
        else:
            _put(sd, src, f"body.{i}", layer)
    return sd, final_scale


_KINDS = {"conv": "Convolution", "deconv": "Deconvolution", "se": "InnerProduct"}


def _realcugan(src: str, layers: list[Layer]) -> dict:
    """The weight layers of a Real-CUGAN graph, named as the official ``.pth``; the
    ``pro`` releases differ only in the mapping around the graph, so their ncnn files
    say it in the name alone (``REALCUGAN_PRO_*``, ``up2x-pro-*``): it is read from there
    and stored as the official ``pro`` marker."""
    weighted = [layer for layer in layers if layer.type in _KINDS.values()]
    if any(layer.type == "PixelShuffle" for layer in layers):
        scale = 4
    else:
        bottom = weighted[9] if len(weighted) > 9 else None
        scale = 3 if bottom is not None and bottom.params.get(1) == 5 else 2
    keys = official_keys(scale)
    for i, layer in enumerate(weighted):
        key, kind = keys[i] if i < len(keys) else ("-", None)
        want = _KINDS.get(kind, "nothing more")
        if layer.type != want:
            raise UserError(
                f"{src}: layer {layer.name} (line {layer.line}) does not fit a Real-CUGAN "
                f"×{scale}: it is a {layer.type} where {want} ({key}) was expected."
            )
    if len(weighted) != len(keys):
        raise UserError(
            f"{src}: the graph has {len(weighted)} weight layers, where a Real-CUGAN ×{scale} "
            f"has {len(keys)}; the file is cut short."
        )
    sd: dict = {}
    for (key, kind), layer in zip(keys, weighted, strict=True):
        k = layer.params.get(1, 1) if kind != "se" else 1
        w = _conv_weight(src, layer, k)
        if kind == "deconv":  # ncnn keeps (out, in, k, k), PyTorch (in, out, k, k)
            w = w.transpose(1, 0, 2, 3)
        sd[f"{key}.weight"] = w
        sd[f"{key}.bias"] = layer.weights.get("bias", np.zeros(layer.params[0], np.float32))
    if "PRO" in os.path.basename(src).upper().replace("-", "_").split("_"):
        sd["pro"] = np.zeros(1, np.float32)
    return sd


def official_state_dict(src: str, layers: list[Layer]) -> tuple[dict, dict]:
    """``(state dict with the official .pth names, extra model kwargs)`` of an ncnn
    graph; anything else is one sentence naming the first layer that does not fit."""
    body = [layer for layer in layers if layer.type not in _ROUTING]
    if not body:
        raise UserError(f"{src}: the graph has no layers that compute anything.")
    if any(layer.type == "Deconvolution" for layer in body):
        return _realcugan(src, body), {}
    if any(layer.type == "PReLU" for layer in body):
        sd, final_scale = _srvgg(src, body)
        return sd, ({"final_scale": final_scale} if final_scale else {})
    return _rrdbnet(src, body), {}
