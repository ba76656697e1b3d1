"""Export a jaxsr model (model directory or training workdir, local or gs://) as an
ONNX or StableHLO file, verified before it is kept.

The file is written to a temporary path, loaded back by its runtime (ONNX Runtime, or
``jax.export.deserialize``), run on random inputs at two sizes (and two batch sizes when
the batch is dynamic) and compared with jaxsr's own output of the same inputs. Only a
file within tolerance replaces ``out``; a mismatch is an error and leaves nothing.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import files
from jaxsr.deploy import formats, runtimes
from jaxsr.errors import UserError
from jaxsr.model_dir import check_output
from jaxsr.saved_model import load_model_and_task
from jaxsr.tasks.signature import GraphSignature
from jaxsr.train.workdir import CONFIG_FILE, load_config

# Largest |exported - jaxsr| allowed, on outputs in [0, 1]. float32 is the bar;
# float16 weights and activations carry ~3 significant digits through tens of layers.
TOLERANCE = {"float32": 1e-4, "float16": 2e-2}
# Sides that are no multiple of 4 or 8 (the padding inside the graph runs), raised to
# the network's smallest.
CHECK_SIDES = ((23, 32), (40, 19))


@dataclasses.dataclass
class ExportReport:
    path: str
    format: str
    dtype: str
    inputs: list[str]
    rule: str
    scale: int
    multiple: int
    errors: list[tuple[tuple[int, ...], float]]  # (first input's NHWC shape, max |diff|)
    tolerance: float
    bytes: int

    def summary(self) -> str:
        checks = ", ".join(f"{'x'.join(map(str, s))}: {e:.1e}" for s, e in self.errors)
        return (
            f"Wrote {self.path} ({self.format}, {self.dtype}, {self.bytes / 2**20:.1f} MiB); "
            f"inputs {', '.join(self.inputs)}; {self.rule}. Max |{self.format} - jaxsr| "
            f"{checks} (tolerance {self.tolerance:g})."
        )


def load_graphs(model: str, dtype: str = "float32") -> tuple[GraphSignature, GraphSignature]:
    """``(reference, exported)`` graph signatures of a model directory or workdir, read
    once: the reference computes in float32, the exported one in ``dtype`` (float32
    inputs and output whatever the compute dtype)."""
    module, variables, task = load_model_and_task(model)
    config = load_config(model) if files.exists(os.path.join(model, CONFIG_FILE)) else None
    reference = task.graph(module, variables, config)
    if dtype == "float32":
        return reference, reference
    if "dtype" not in {f.name for f in dataclasses.fields(module)}:
        raise UserError(f"This model has no compute dtype option; drop --dtype={dtype}.")
    half = module.clone(dtype=jnp.dtype(dtype))
    sig = task.graph(half, formats.cast_floats(variables, dtype), config)
    fn = sig.fn

    def in_float32(*xs):
        return fn(*xs).astype(jnp.float32)

    return reference, dataclasses.replace(sig, fn=in_float32)


def random_inputs(sig: GraphSignature, batch: int, side_hw, seed: int = 0) -> list[np.ndarray]:
    """NHWC inputs for the check: images uniform in [0, 1], class probabilities that sum
    to one, id maps of 8×8 blocks (so instance edges are sparse, as in real maps)."""
    rng = np.random.default_rng(seed)
    h, w = (max(s, sig.smallest) for s in side_hw)
    out = []
    for port in sig.inputs:
        ph, pw = h * port.size_factor, w * port.size_factor
        if not port.channels:
            blocks = rng.integers(0, port.ids, (batch, ph // 8 + 1, pw // 8 + 1))
            out.append(np.repeat(np.repeat(blocks, 8, 1), 8, 2)[:, :ph, :pw].astype(np.int32))
        elif port.name == "prior":
            p = rng.uniform(0, 1, (batch, ph, pw, port.channels)).astype(np.float32)
            out.append(p / p.sum(-1, keepdims=True))
        else:
            out.append(rng.uniform(0, 1, (batch, ph, pw, port.channels)).astype(np.float32))
    return out


def export_model(
    model: str,
    fmt: str,
    out: str,
    *,
    dtype: str = "float32",
    batch: int | None = None,
    overwrite: bool = False,
) -> ExportReport:
    """Write ``model`` as ``fmt`` (``onnx`` | ``stablehlo``) to ``out``, verified.

    ``batch`` ``None`` keeps the batch dimension dynamic. ``out`` follows
    ``jaxsr.convert --out``'s rules: a new file, or an existing one with ``overwrite``.
    """
    if fmt not in formats.FORMATS:
        raise UserError(f"--format={fmt!r}; choose one of {', '.join(formats.FORMATS)}.")
    if dtype not in formats.DTYPES:
        raise UserError(f"--dtype={dtype!r}; choose one of {', '.join(formats.DTYPES)}.")
    if batch is not None and batch < 1:
        raise UserError(f"--batch={batch} must be a positive number or 'dynamic'.")
    ext = os.path.splitext(out)[1].lower()
    if (ext == ".onnx") != (fmt == "onnx") and ext in (".onnx", ".stablehlo", ".mlir"):
        raise UserError(f"--out {out!r} names a {ext} file but --format={fmt}; match them.")
    check_output(out, [model], overwrite=overwrite, kind="file")
    reference, sig = load_graphs(model, dtype)
    metadata = {
        "jaxsr_scale": sig.scale,
        "jaxsr_multiple": sig.multiple,
        "jaxsr_min_side": sig.smallest,
        "jaxsr_inputs": ",".join(p.name for p in sig.inputs),
        "jaxsr_size_rule": sig.rule,
        "jaxsr_dtype": dtype,
    }
    try:
        if fmt == "onnx":
            blob = formats.onnx_bytes(sig, batch, metadata)
        else:
            blob = formats.stablehlo_bytes(sig, batch)
    except UserError:
        raise
    except Exception as e:  # the converter's own errors name the op it could not map
        raise UserError(f"{model} could not be exported as {fmt}: {type(e).__name__}: {e}") from e
    reference_fn = jax.jit(reference.any_size())
    errors = []
    with files.atomic_path(out, suffix=os.path.splitext(out)[1]) as tmp:
        with open(tmp, "wb") as f:  # our temporary local file
            f.write(blob)
        run = runtimes.OnnxModel(tmp) if fmt == "onnx" else None
        for i, side in enumerate(CHECK_SIDES):
            n = batch if batch is not None else 1 + i
            inputs = random_inputs(sig, n, side, seed=i)
            got = run(*inputs) if run else runtimes.run_stablehlo(blob, *inputs)
            want = np.asarray(reference_fn(*inputs))
            if not np.isfinite(want).all():
                raise UserError(
                    f"{model} itself gives NaN or infinite values (damaged weights, or a "
                    f"diverged run); nothing was written to {out}."
                )
            if got.shape != want.shape:
                raise UserError(f"The {fmt} file gives {got.shape} where jaxsr gives {want.shape}.")
            errors.append((inputs[0].shape, float(np.max(np.abs(got - want)))))
        worst = max(e for _, e in errors)
        if not worst <= TOLERANCE[dtype]:
            raise UserError(
                f"The exported {fmt} model differs from jaxsr by up to {worst:.2e} (tolerance "
                f"{TOLERANCE[dtype]:g} for {dtype}); nothing was written to {out}."
            )
    return ExportReport(
        out,
        fmt,
        dtype,
        [p.name for p in sig.inputs],
        sig.rule,
        sig.scale,
        sig.multiple,
        errors,
        TOLERANCE[dtype],
        len(blob),
    )


def onnx_backend(model: str, dtype: str = "float32") -> runtimes.OnnxModel:
    """An ONNX Runtime model for ``jaxsr.upscale --backend=onnxruntime``: ``model`` an
    ``.onnx`` file, or a jaxsr model directory / workdir exported (and verified) now."""
    if runtimes.is_onnx_file(model):
        if dtype != "float32":
            raise UserError(f"--dtype={dtype} applies when exporting; {model} is already ONNX.")
        return runtimes.OnnxModel(model)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="jaxsr-onnx-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        report = export_model(model, "onnx", path, dtype=dtype)
        print(
            f"Exported {model} to ONNX for onnxruntime: max |onnx - jaxsr| "
            f"{max(e for _, e in report.errors):.1e}."
        )
        return runtimes.OnnxModel(path)


def onnx_image_model(model: str, dtype: str = "float32") -> runtimes.OnnxModel:
    """:func:`onnx_backend` for the tools that feed one image (``jaxsr.upscale``,
    ``jaxsr.evaluate``): a model with other inputs (a prior, label maps) is refused."""
    onnx_model = onnx_backend(model, dtype)
    if onnx_model.input_names != ["input"]:
        raise UserError(
            f"{model} takes {', '.join(onnx_model.input_names)}: not an image-to-image model "
            "that this tool can feed; use --backend=jax."
        )
    return onnx_model
