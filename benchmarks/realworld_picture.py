"""The picture of docs/methods/realesrgan.md: a JPEG-damaged photo upscaled ×4 side by side.

    python benchmarks/realworld_picture.py --model=workdirs/dasr_demo \
        --model=workdirs/realesrgan_demo --out=docs/images/realworld_jpeg.png

A crop of a held-out builtin photo (neither demo trained on it) is reduced ×4 with
MATLAB bicubic and saved by Pillow's JPEG encoder at ``--quality`` (a real encoder, not
the training pipeline's DiffJPEG), then upscaled by MATLAB bicubic and by each model.
Panels: the damaged input (nearest ×4), bicubic, each model, the original; each is
labelled with its NIQE (MATLAB's definition; lower looks more natural) and, against
the original, its PSNR on Y. The numbers are printed too.
"""

from __future__ import annotations

import argparse
import io
import os

import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw, ImageFont

import jaxsr
from jaxsr import metrics
from jaxsr.data import builtin_photo
from jaxsr.ops.color import to_uint8
from jaxsr.ops.imresize import imresize


def damaged_input(photo: str, box: tuple[int, int, int], quality: int):
    """``(hr, lq)`` uint8: the ``(y, x, size)`` crop and its ×1/4 JPEG at ``quality``."""
    y, x, size = box
    hr = builtin_photo(photo)[y : y + size, x : x + size]
    lq = np.asarray(imresize(hr.astype(np.float64), 0.25, quantize=True)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(lq).save(buffer, format="JPEG", quality=quality)
    return hr, np.asarray(Image.open(buffer).convert("RGB"))


def upscale(model_dir: str, lq: np.ndarray) -> np.ndarray:
    module, variables = jaxsr.load_model(model_dir)
    return to_uint8(
        np.asarray(module.apply(variables, jnp.asarray(lq, jnp.float32)[None] / 255.0))[0]
    )


def scores(img: np.ndarray, hr: np.ndarray) -> str:
    niqe = f"NIQE {metrics.niqe(img, crop_border=4):.2f}"
    if img is hr:
        return niqe
    return f"{niqe}, PSNR-Y {metrics.psnr(img, hr, crop_border=4, y_channel=True):.2f} dB"


def draw_row(sheet, panels, hr, *, top: int, width: int, header: int, font, short=False):
    """Paste ``panels`` (``[(title, uint8 image)]``, the first the unscored input) left
    to right at height ``top``, each under its title and its scores against ``hr``
    (``short``: "NIQE a | b dB"); prints the scores."""
    draw = ImageDraw.Draw(sheet)
    for i, (title, img) in enumerate(panels):
        sheet.paste(Image.fromarray(img), (i * width, top + header))
        line = "" if i == 0 else scores(img, hr)
        print(f"{title:28s} {line}")
        draw.text((i * width + 4, top + 2), title, fill="black", font=font)
        shown = line.replace(", PSNR-Y", " |") if short else line
        draw.text((i * width + 4, top + 20), shown, fill="black", font=font)


def save_sheet(sheet, out: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    sheet.save(out, optimize=True)
    print(f"wrote {out}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", default=[], help="model dir or workdir (repeat)")
    p.add_argument("--label", action="append", default=[], help="a panel title per --model")
    p.add_argument("--photo", default="coffee", help="a builtin photo of the evaluation split")
    p.add_argument("--box", default="100,180,256", help="crop y,x,size (size a multiple of 4)")
    p.add_argument("--quality", type=int, default=30, help="Pillow JPEG quality of the input")
    p.add_argument("--out", required=True, help="the PNG to write")
    args = p.parse_args(argv)
    labels = args.label or [os.path.basename(m.rstrip("/")) for m in args.model]
    hr, lq = damaged_input(args.photo, tuple(int(v) for v in args.box.split(",")), args.quality)
    h, w = hr.shape[:2]
    panels = [
        (f"input: 1/4 size, JPEG q{args.quality}", np.repeat(np.repeat(lq, 4, 0), 4, 1)),
        ("bicubic", np.asarray(imresize(lq.astype(np.float64), 4.0, quantize=True), np.uint8)),
        *((label, upscale(m, lq)) for label, m in zip(labels, args.model, strict=True)),
        ("original", hr),
    ]
    header = 40
    sheet = Image.new("RGB", (w * len(panels), h + header), "white")
    font = ImageFont.load_default(size=14)
    draw_row(sheet, panels, hr, top=0, width=w, header=header, font=font)
    save_sheet(sheet, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
