"""Upscale or restore image files with a jaxsr model (``python -m jaxsr.upscale``).

    python -m jaxsr.upscale --model=DIR --input=FILE_OR_DIR --output=DIR

Options: ``--tile=512`` (LR pixels per tile side; 0 = whole image), ``--tile_overlap=32``,
``--outscale=F`` (the output resized to F × the input, named ``_xF``),
``--batch=4`` (tiles per device call), ``--dtype=bfloat16`` (mixed precision),
``--backend=onnxruntime`` (an ``.onnx`` ``--model``, or a jaxsr model exported to ONNX
and verified first; the same tiling, outputs equal within the export's tolerance).

Any size works: the image is processed in overlapping tiles (``jaxsr.ops.tiling``), so
device memory is bounded by the tile and each tile shape compiles once. Grayscale images
are run as RGB and written back as grayscale (BT.601 luma), RGBA images have their
alpha channel upscaled separately with MATLAB bicubic, 16-bit PNGs stay 16-bit, and
JPEG/BMP/TIFF/WebP are read too. Each output is written atomically as
``<stem>_x<scale>.<ext>``; an existing output is kept (and reported) unless
``--overwrite``, and files that are outputs of other inputs (an output folder that is
also the input folder) are never taken as inputs. A file that cannot be read is
reported and skipped, and the rest are still processed (exit status 1 if any file
failed).
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import files
from jaxsr.cli_flags import add_flag, number, progress_bar
from jaxsr.data.images import (
    IMAGE_EXTENSIONS,
    ImageError,
    Picture,
    list_images,
    read_image,
    write_image,
)
from jaxsr.deploy.export import onnx_image_model
from jaxsr.errors import UserError, cli
from jaxsr.interpolate import interpolate
from jaxsr.ops.imresize import imresize
from jaxsr.ops.tiling import tile_windows, tiled_apply
from jaxsr.saved_model import load_model_and_task


def upscale_picture(
    apply_fn,
    pic: Picture,
    *,
    scale: int,
    tile: int,
    overlap: int,
    batch: int,
    desc: str = "",
    min_side: int = 1,
    outscale: float = 0.0,
) -> Picture:
    """Run the model on a decoded picture; returns a picture of the same kind (depth,
    channels). ``tile`` 0: the whole image at once (no padding to a square); an image
    with a side below ``min_side`` (the model's smallest) is mirrored up to it and the
    output cropped back. ``outscale`` (> 0): the model's output is then resized to
    ``outscale`` × the input's size with MATLAB bicubic (antialiased when shrinking), as
    Real-ESRGAN's ``--outscale`` resizes after the network."""
    rgb = pic.rgb_float()
    h, w, _ = rgb.shape
    if tile > 0:
        n_tiles = len(tile_windows(max(h, tile), max(w, tile), tile, overlap))
        bar = progress_bar(total=n_tiles, desc=desc, unit="tile") if n_tiles > 1 else None
        out = tiled_apply(
            apply_fn,
            rgb,
            scale=scale,
            tile=tile,
            overlap=overlap,
            batch=batch,
            progress=bar.update if bar else None,
        )
        if bar is not None:
            bar.close()
    else:  # the whole image at its own shape; a side below the model's smallest mirrored
        ph, pw = max(h, min_side) - h, max(w, min_side) - w
        padded = np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="symmetric") if ph or pw else rgb
        out = np.asarray(apply_fn(padded[None]), np.float32)[0, : h * scale, : w * scale]
    size = (h * scale, w * scale)
    if outscale and outscale != scale:
        size = (max(1, round(h * outscale)), max(1, round(w * outscale)))
        out = imresize(out.astype(np.float64), size=size).astype(np.float32)
    out = np.clip(out, 0.0, 1.0)
    channels = pic.pixels.shape[-1]
    if channels in (1, 2):  # grayscale (+ alpha): back to one channel
        out = (out @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    if channels in (2, 4):
        alpha = pic.pixels[..., -1:].astype(np.float64) / pic.max_value
        alpha = imresize(alpha, size=size) if size != (h, w) else alpha
        out = np.concatenate([out, np.clip(alpha, 0.0, 1.0).astype(np.float32)], axis=-1)
    dtype = np.uint16 if pic.bit_depth == 16 else np.uint8
    return Picture(np.floor(out * pic.max_value + 0.5).astype(dtype))


_WRITABLE = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def output_path(out_dir: str, src: str, scale: float, bit_depth: int) -> str:
    """``<out_dir>/<stem>_x<scale><ext>`` (``_x4``, ``_x3.5``); PNG for 16-bit data and
    unwritable formats."""
    stem, ext = os.path.splitext(os.path.basename(src))
    if bit_depth == 16 or ext.lower() not in _WRITABLE:
        ext = ".png"
    return os.path.join(out_dir, f"{stem}_x{scale:g}{ext}")


def drop_own_outputs(paths: list[str], out_dir: str, scale: float) -> tuple[list[str], list[str]]:
    """``(inputs, outputs)``: files that another input would be written to are outputs
    of an earlier run in the same folder, not new inputs (no ``x_x4_x4.png``)."""
    outputs = {
        files.resolved(output_path(out_dir, f, scale, depth)) for f in paths for depth in (8, 16)
    }
    inputs = [f for f in paths if files.resolved(f) not in outputs]
    return inputs, [f for f in paths if files.resolved(f) in outputs]


def check_distinct_outputs(paths: list[str], out_dir: str, scale: float) -> None:
    """Refuse, before anything is written, two inputs that could be written to one
    output (``x.png`` and ``x.ppm`` both become ``x_x4.png``; a 16-bit TIFF becomes a
    PNG): the second would be reported as kept, or replace the first."""
    owner: dict[str, str] = {}
    for path in paths:
        for depth in (8, 16):
            dst = output_path(out_dir, path, scale, depth)
            other = owner.setdefault(dst, path)
            if other != path:
                raise UserError(
                    f"{other} and {path} would both be written to {dst}; rename one of them "
                    "or upscale them into different --output folders."
                )


def make_apply(
    model_path: str,
    dtype: str,
    ensemble: bool = False,
    *,
    denoise_strength: float = 1.0,
    wdn_model: str = "",
):
    """``(tiles -> outputs, scale, smallest side)`` of a model, as its task feeds it
    (``Task.tile_predictor``).

    ``denoise_strength`` < 1 blends the weights with ``wdn_model``'s (Real-ESRGAN's
    ``realesr-general-wdn-x4v3``, its weak-denoise twin) as the official inference's
    ``dni`` does: ``s·θ_model + (1 - s)·θ_wdn``."""
    module, variables, task = load_model_and_task(model_path)
    if not 0.0 <= denoise_strength <= 1.0:
        raise UserError(f"--denoise_strength={denoise_strength} must lie in [0, 1].")
    if denoise_strength < 1.0:
        if not wdn_model:
            raise UserError(
                f"--denoise_strength={denoise_strength} blends with the weak-denoise twin: "
                "give it as --wdn_model=DIR (e.g. converted realesr-general-wdn-x4v3.pth)."
            )
        _, wdn_variables, _ = load_model_and_task(wdn_model)
        variables = interpolate(wdn_variables, variables, denoise_strength)
    if dtype != "float32" and not hasattr(module, "dtype"):
        raise UserError(f"This model has no compute dtype option; drop --dtype={dtype}.")
    variables = jax.device_put(variables)
    try:
        run = task.tile_predictor(module, variables, ensemble=ensemble)
        if dtype != "float32":
            half = task.tile_predictor(
                module.clone(dtype=jnp.dtype(dtype)), variables, ensemble=ensemble
            )
            run = _finite_or_float32(half, run, dtype)
    except UserError as e:
        raise UserError(f"{model_path}: {e}") from e
    return run, module.scale, getattr(module, "min_side", 1)


def _finite_or_float32(half, full, dtype: str):
    """``half`` (a half-precision predictor), with every tile whose output holds NaN or
    infinity (an overflow: users of the PyTorch tools get black images from fp16)
    computed again by ``full`` in float32; the first time, one notice says so."""
    told = []

    def run(tiles):
        out = np.array(half(tiles), np.float32)  # a copy: the device's buffer is read-only
        bad = ~np.isfinite(out).all(axis=tuple(range(1, out.ndim)))
        if bad.any():
            out[bad] = np.asarray(full(tiles), np.float32)[bad]  # the same batch shape
            if not told:
                told.append(True)
                print(
                    f"note: {dtype} gave NaN or infinite values in {int(bad.sum())} tile(s); "
                    "they were computed again in float32.",
                    file=sys.stderr,
                )
        return out

    return run


def make_onnx_apply(model_path: str, dtype: str, ensemble: bool, denoise_strength: float):
    """``(tiles -> outputs, scale, smallest side)`` in ONNX Runtime: an ``.onnx`` file, or
    a jaxsr model exported now (``jaxsr.deploy.export.onnx_image_model``)."""
    if ensemble or denoise_strength != 1.0:
        flag = "--self_ensemble" if ensemble else "--denoise_strength"
        raise UserError(f"{flag} runs with --backend=jax only.")
    model = onnx_image_model(model_path, dtype)
    return model, model.scale, model.min_side


def _input_files(path: str) -> list[str]:
    if files.isdir(path):
        found = list_images(path)
    else:
        problem = files.file_problem(path)
        if problem:
            raise UserError(f"--input {path!r}: {problem}; give an image file or a folder.")
        found = [path]
    if not found:
        raise UserError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) in {path!r}.")
    return found


@cli
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxsr.upscale", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="model directory or training workdir")
    p.add_argument("--input", required=True, help="an image file or a folder of images")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument(
        "--tile",
        type=number(int, 0),
        default=512,
        help="tile side in input pixels (0: whole image)",
    )
    add_flag(
        p,
        "--tile_overlap",
        type=number(int, 0),
        default=32,
        help="overlap of tiles in input pixels",
    )
    p.add_argument("--batch", type=number(int, 1), default=4, help="tiles per device call")
    add_flag(
        p,
        "--outscale",
        type=number(float, 0.001, 64.0),
        default=0.0,
        help="final scale: the model's output resized to this × the input (e.g. 3.5)",
    )
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    add_flag(p, "--self_ensemble", action="store_true", help="average over the 8 flips/rotations")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    add_flag(
        p,
        "--denoise_strength",
        type=number(float, 0.0, 1.0),
        default=1.0,
        help="Real-ESRGAN general-x4v3: 1 strong denoising, 0 the weak-denoise twin's weights",
    )
    add_flag(p, "--wdn_model", default="", help="the weak-denoise twin for --denoise_strength")
    p.add_argument(
        "--backend",
        default="jax",
        choices=["jax", "onnxruntime"],
        help="onnxruntime: an .onnx --model, or a jaxsr model exported to ONNX first",
    )
    args = p.parse_args(argv)
    if args.tile and args.tile_overlap >= args.tile:
        raise UserError(
            f"--tile_overlap={args.tile_overlap} must be smaller than --tile={args.tile}."
        )
    inputs = _input_files(args.input)
    if args.backend == "onnxruntime":
        apply_fn, scale, min_side = make_onnx_apply(
            args.model, args.dtype, args.self_ensemble, args.denoise_strength
        )
    else:
        apply_fn, scale, min_side = make_apply(
            args.model,
            args.dtype,
            args.self_ensemble,
            denoise_strength=args.denoise_strength,
            wdn_model=args.wdn_model,
        )
    if 0 < args.tile < min_side:
        raise UserError(
            f"--tile={args.tile} is below the smallest side this model takes ({min_side}); "
            f"give --tile={min_side} or more, or --tile=0."
        )
    label = args.outscale or scale  # what the output names carry: _x4, _x3.5
    inputs, earlier = drop_own_outputs(inputs, args.output, label)
    if earlier:
        print(f"Not taken as inputs: {len(earlier)} earlier outputs ({earlier[0]}, ...).")
    if not inputs:
        raise UserError(f"{args.input!r} holds only earlier outputs of jaxsr.upscale.")
    check_distinct_outputs(inputs, args.output, label)
    failed = written = 0
    for i, path in enumerate(inputs, 1):
        try:
            pic = read_image(path)
            dst = output_path(args.output, path, label, pic.bit_depth)
            if files.exists(dst) and not args.overwrite:
                print(f"[{i}/{len(inputs)}] {dst} exists, kept (--overwrite replaces it)")
                continue
            try:
                result = upscale_picture(
                    apply_fn,
                    pic,
                    scale=scale,
                    tile=args.tile,
                    overlap=args.tile_overlap,
                    batch=args.batch,
                    desc=f"[{i}/{len(inputs)}] {os.path.basename(path)}",
                    min_side=min_side,
                    outscale=args.outscale,
                )
            except UserError as e:  # the model failed on this image: the others go on
                failed += 1
                print(f"[{i}/{len(inputs)}] skipped: {path}: {e}", file=sys.stderr)
                continue
            write_image(dst, result.pixels)
            written += 1
            h, w = pic.pixels.shape[:2]
            print(f"[{i}/{len(inputs)}] {path} ({w}x{h}) -> {dst}")
        except (ImageError, OSError) as e:
            failed += 1
            print(f"[{i}/{len(inputs)}] skipped: {e}", file=sys.stderr)
        except UserError as e:  # the output could not be written (disk full, permissions)
            raise UserError(f"{e} ({written} of {len(inputs)} outputs were written before.)") from e
    if failed:
        print(f"{failed} of {len(inputs)} files failed; the others were written.", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
