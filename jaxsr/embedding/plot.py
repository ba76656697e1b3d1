"""Scatter plots of 2-D projections, drawn with Pillow (no plotting library needed).

Colour = degradation setting (a legend names them), marker = photo (eight shapes,
filled then hollow, so sixteen photos are told apart).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from jaxsr.data.degradations import ascii_tag
from jaxsr.data.images import write_image

# Tableau-10: distinct colours for up to ten settings (cycled beyond).
PALETTE = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)  # fmt: skip
SHAPES = ("circle", "square", "triangle", "diamond", "down", "plus", "cross", "pentagon")


def _marker(draw: ImageDraw.ImageDraw, x: float, y: float, shape: str, colour, hollow: bool):
    """One marker; ``hollow`` draws the outline only (thin strokes for plus / cross)."""
    r, outline, fill = 4, colour, None if hollow else colour
    box = (x - r, y - r, x + r, y + r)
    if shape == "circle":
        draw.ellipse(box, fill=fill, outline=outline)
    elif shape == "square":
        draw.rectangle(box, fill=fill, outline=outline)
    elif shape in ("triangle", "down", "diamond", "pentagon"):
        polygons = {"triangle": (3, 90), "down": (3, 270), "diamond": (4, 0), "pentagon": (5, 90)}
        sides, rot = polygons[shape]
        draw.regular_polygon((x, y, r + 1), sides, rotation=rot, fill=fill, outline=outline)
    else:  # plus / cross: lines only
        d = r if shape == "plus" else 0.75 * r
        lines = (
            [((x - d, y), (x + d, y)), ((x, y - d), (x, y + d))]
            if shape == "plus"
            else [((x - d, y - d), (x + d, y + d)), ((x - d, y + d), (x + d, y - d))]
        )
        for line in lines:
            draw.line(line, fill=outline, width=1 if hollow else 2)


def scatter_panels(panels, setting, photo, setting_names, path: str, *, size: int = 420) -> None:
    """Side-by-side scatter panels ``[(title, points (N, 2))]`` sharing one legend; an
    atomic PNG at ``path``."""
    legend_w, title_h = 170, 22
    img = Image.new("RGB", (len(panels) * size + legend_w, size + title_h), "white")
    draw = ImageDraw.Draw(img)
    for p, (title, pts) in enumerate(panels):
        x0 = p * size
        draw.text((x0 + 8, 4), title, fill="black")
        draw.rectangle((x0 + 4, title_h, x0 + size - 4, title_h + size - 4), outline=(160,) * 3)
        lo, hi = pts.min(0), pts.max(0)
        xy = (pts - lo) / np.maximum(hi - lo, 1e-12) * (size - 40) + 18
        order = np.random.default_rng(0).permutation(len(pts))  # no colour drawn last on top
        for i in order:
            colour = PALETTE[setting[i] % len(PALETTE)]
            hollow = (photo[i] // len(SHAPES)) % 2 == 1
            x, y = x0 + float(xy[i, 0]), title_h + size - 4 - float(xy[i, 1])
            _marker(draw, x, y, SHAPES[photo[i] % len(SHAPES)], colour, hollow)
    lx = len(panels) * size + 10
    draw.text((lx, 4), "degradation", fill="black")
    for j, name in enumerate(setting_names):
        y = title_h + 8 + 18 * j
        draw.rectangle((lx, y, lx + 10, y + 10), fill=PALETTE[j % len(PALETTE)])
        draw.text((lx + 16, y - 1), ascii_tag(name), fill="black")  # the bitmap font is ASCII
    y = title_h + 16 + 18 * len(setting_names)
    draw.text((lx, y), "marker = photo", fill="black")
    write_image(path, np.asarray(img))
