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


class OnnxModel:
    """An ONNX model in ONNX Runtime (CPU): ``model(*inputs)`` with NHWC float32 images
    (``(N, H, W)`` int32 id maps) -> NHWC output. ``scale`` and ``multiple`` come from the
    file's jaxsr metadata (1 for a file jaxsr did not write), and so does ``min_side``,
    the smallest height and width it takes."""

    def __init__(self, source, *, threads: int = 0):
        import onnxruntime as ort  # the backend is optional at import time

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: no notices on the console
        if threads:
            options.intra_op_num_threads = threads
        if isinstance(source, str):
            if files.file_problem(source):
                raise UserError(f"{source!r}: {files.file_problem(source)}; give an .onnx file.")
            source = files.read_bytes(source)
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise UserError(f"ONNX Runtime cannot load the model: {e}") from e
        meta = self.session.get_modelmeta().custom_metadata_map
        self.scale = int(meta.get("jaxsr_scale", 1))
        self.multiple = int(meta.get("jaxsr_multiple", 1))
        self.min_side = int(meta.get("jaxsr_min_side", 1))
        self.input_names = [i.name for i in self.session.get_inputs()]

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
        (out,) = self.session.run(["output"], feed)
        return np.transpose(out, (0, 2, 3, 1))


def run_stablehlo(blob: bytes, *inputs) -> np.ndarray:
    """A serialized ``jax.export`` (NHWC in and out) run on this machine's backend."""
    exported = jax.export.deserialize(bytearray(blob))
    return np.asarray(exported.call(*inputs))


def is_onnx_file(path: str) -> bool:
    return os.path.splitext(path)[1].lower() == ".onnx" and files.isfile(path)
