"""A graph signature (:mod:`jaxsr.tasks.signature`) as a file: StableHLO through
``jax.export`` and ONNX through jax2onnx.

Both keep the batch (unless fixed), the height and the width symbolic (``B``, ``H``,
``W``): one file runs at every size. A network whose sides must be multiples of ``m``
(the ×2 RRDBNet's pixel-unshuffle, MIRNet's streams, pix2pixHD's downsamplings) has the
reflect padding to the next multiple and the crop back inside the graph
(:meth:`~jaxsr.tasks.signature.GraphSignature.any_size`), so it takes any size from its
smallest side up, as Real-ESRGAN's inference pads.

Why jax2onnx (jaxsr's comparison, docs/export.md): it converts the jaxpr directly, so
every primitive our networks use maps to ONNX operators with symbolic spatial sizes;
``jax2tf`` + ``tf2onnx`` cannot convert these models any more (``jax2tf`` now only
emits StableHLO wrapped in one ``XlaCallModule`` TensorFlow op, which ``tf2onnx`` has
no conversion for).
"""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.tasks.signature import GraphSignature

FORMATS = ("onnx", "stablehlo")
DTYPES = ("float32", "float16")
# StableHLO for every platform JAX serves: the file runs wherever it is loaded.
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
ONNX_OPSET = 18


def nhwc_specs(sig: GraphSignature, batch: int | None) -> list[jax.ShapeDtypeStruct]:
    """Abstract NHWC inputs: batch ``B`` (or ``batch``), sides ``H`` and ``W`` (times the
    input's ``size_factor``) from the signature's smallest; id maps ``(B, H, W)`` int32."""
    least = sig.smallest
    b, h, w = jax.export.symbolic_shape("B, H, W", constraints=(f"H >= {least}", f"W >= {least}"))
    n = b if batch is None else batch
    specs = []
    for port in sig.inputs:
        f = port.size_factor
        shape = (n, f * h, f * w) + ((port.channels,) if port.channels else ())
        specs.append(jax.ShapeDtypeStruct(shape, jnp.float32 if port.channels else jnp.int32))
    return specs


def stablehlo_bytes(sig: GraphSignature, batch: int | None) -> bytes:
    """The serialized ``jax.export.Exported`` (NHWC, as jaxsr's models): load it with
    ``jax.export.deserialize(blob).call(*inputs)``."""
    fn = jax.jit(sig.any_size())
    exported = jax.export.export(fn, platforms=PLATFORMS)(*nhwc_specs(sig, batch))
    return bytes(exported.serialize())


def _to_nchw(x):
    return jnp.transpose(x, (0, 3, 1, 2)) if x.ndim == 4 else x


def _to_nhwc(x):
    return jnp.transpose(x, (0, 2, 3, 1)) if x.ndim == 4 else x


def onnx_bytes(sig: GraphSignature, batch: int | None, metadata: dict[str, str]) -> bytes:
    """The ONNX model: NCHW float inputs (id maps ``(N, H, W)`` int32), output
    ``output`` NCHW in [0, 1], names as the signature's; ``metadata`` goes into the
    model's ``metadata_props`` (jaxsr's upscale reads the scale from there)."""
    from jax2onnx import to_onnx  # only the export needs it

    # onnx_ir warns about untyped shape constants it leaves out (the model is complete).
    logging.getLogger("onnx_ir.serde").setLevel(logging.ERROR)
    run = sig.any_size()

    def fn(*inputs):
        return _to_nchw(run(*(_to_nhwc(x) for x in inputs)))

    specs = []
    for spec in nhwc_specs(sig, batch):
        shape = spec.shape
        if len(shape) == 4:
            shape = (shape[0], shape[3], shape[1], shape[2])
        specs.append(jax.ShapeDtypeStruct(shape, spec.dtype))
    # jax2onnx logs its progress on the root logger at INFO; that is not for the user.
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        model = to_onnx(
            fn,
            specs,
            model_name="jaxsr",
            opset=ONNX_OPSET,
            input_names=[port.name for port in sig.inputs],
            output_names=["output"],
        )
    finally:
        root.setLevel(level)
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    return model.SerializeToString()


def cast_floats(tree, dtype):
    """Every floating leaf of ``tree`` as ``dtype`` (the weights of a float16 export)."""
    return jax.tree.map(
        lambda v: np.asarray(v, dtype) if np.issubdtype(np.asarray(v).dtype, np.floating) else v,
        tree,
    )
