"""Running exported files: ONNX Runtime sessions and deserialized StableHLO, both fed
and answering NHWC arrays as jaxsr's models are, so the export check, ``jaxsr.upscale
--backend=onnxruntime`` and ``jaxsr.evaluate`` call them like ``module.apply``."""

from __future__ import annotations

import os

import jax
import numpy as np

from jaxsr import files
from jaxsr.errors import UserError


def _nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))) if x.ndim == 4 else x


PROBE_SIDE = 64  # the probe image of a file without jaxsr metadata


class OnnxModel:
    """An ONNX model in ONNX Runtime (CPU): ``model(*inputs)`` with NHWC float32 images
    (``(N, H, W)`` int32 id maps) -> NHWC output. ``scale``, ``multiple`` and
    ``min_side`` (the smallest height and width it takes) come from the file's jaxsr
    metadata; a file another tool wrote (Real-ESRGAN's ``pytorch2onnx.py``) has none, so
    its scale is read off one probe run on a ``PROBE_SIDE``² image. Its first output is
    the image, whatever its name. Everything that goes wrong is one sentence."""

    def __init__(self, source, *, threads: int = 0):
        import onnxruntime as ort  # the backend is optional at import time

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no notices on the console
        if threads:
            options.intra_op_num_threads = threads
        self.name = source if isinstance(source, str) else "the ONNX model"
        if isinstance(source, str):
            if files.file_problem(source):
                raise UserError(f"{source!r}: {files.file_problem(source)}; give an .onnx file.")
            source = files.read_bytes(source)
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise UserError(f"ONNX Runtime cannot load the model: {e}") from e
        inputs = self.session.get_inputs()
        self.input_names = [i.name for i in inputs]
        self.output_name = self.session.get_outputs()[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        self.multiple = self._meta(meta, "jaxsr_multiple", 1)
        self.min_side = self._meta(meta, "jaxsr_min_side", 1)
        if "jaxsr_scale" in meta:  # jaxsr wrote it: its inputs are described there
            self.scale = self._meta(meta, "jaxsr_scale", 1)
            return
        shape = inputs[0].shape
        if len(inputs) != 1 or len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise UserError(
                f"{self.name}: its inputs are {[(i.name, i.shape) for i in inputs]}; jaxsr runs "
                "ONNX image models of one input (batch, 3, height, width)."
            )
        self.scale = self._probe_scale()

    def _meta(self, meta: dict, key: str, default: int) -> int:
        value = meta.get(key, str(default))
        try:
            number = int(value)
        except ValueError:
            number = 0
        if number < 1 or number > 64:
            raise UserError(
                f"{self.name}: its metadata {key}={value!r} is not a whole number from 1 to "
                "64; the file is damaged or was edited: export it again."
            )
        return number

    def _probe_scale(self) -> int:
        side = max(PROBE_SIDE, self.min_side)
        probe = np.zeros((1, side, side, 3), np.float32)
        out = self(probe)
        scale = out.shape[1] // side
        if scale < 1 or out.shape[1:3] != (side * scale, side * scale):
            raise UserError(
                f"{self.name}: on a {side}×{side} image it gives {out.shape[1]}×{out.shape[2]}, "
                "not a whole multiple of the input; jaxsr runs image-to-image models."
            )
        return scale

    def __call__(self, *inputs) -> np.ndarray:
        if len(inputs) != len(self.input_names):
            raise UserError(
                f"The ONNX model takes {len(self.input_names)} inputs "
                f"({', '.join(self.input_names)}), not {len(inputs)}."
            )
        side = min(np.shape(inputs[0])[1:3])
        if side < self.min_side:
            raise UserError(
                f"The ONNX model takes images from {self.min_side} pixels a side; this one has "
                f"{side}. Pad it, or upscale with tiles (jaxsr.upscale pads small images)."
            )
        feed = {
            name: _nchw(np.asarray(x)) for name, x in zip(self.input_names, inputs, strict=True)
        }
        try:
            (out,) = self.session.run([self.output_name], feed)
        except Exception as e:  # allocation failures, shape errors inside the graph
            reason = str(e).splitlines()[0][:200]
            raise UserError(
                f"{self.name} failed on a {np.shape(inputs[0])[1]}×{np.shape(inputs[0])[2]} "
                f"input in ONNX Runtime ({reason}); try smaller tiles (--tile)."
            ) from e
        if np.ndim(out) != 4:
            raise UserError(f"{self.name} gives an output of shape {np.shape(out)}, not an image.")
        return np.transpose(out, (0, 2, 3, 1))


def run_stablehlo(blob: bytes, *inputs) -> np.ndarray:
    """A serialized ``jax.export`` (NHWC in and out) run on this machine's backend."""
    exported = jax.export.deserialize(bytearray(blob))
    return np.asarray(exported.call(*inputs))


def is_onnx_file(path: str) -> bool:
    return os.path.splitext(path)[1].lower() == ".onnx" and files.isfile(path)
