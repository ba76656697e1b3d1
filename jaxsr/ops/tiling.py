"""Run an image-to-image network on an image of any size, tile by tile.

Overlapping ``tile``×``tile`` windows (stride ``tile - overlap``) are processed in
fixed-size batches, so the network compiles once per tile shape and device memory is
bounded by the tile, not the image. Outputs are blended with weights that ignore the
outer quarter of each overlap (where a tile's zero-padded border still shows) and ramp
linearly across its middle half, so no seam is visible and, away from the image
border, the result matches running the network on the whole image whenever the
overlap covers the network's effective receptive field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def _ramp(tile: int, start: int, length: int, overlap: int) -> np.ndarray:
    """Blend weights along one axis for a window at ``start`` of an axis of ``length``."""
    d = np.arange(tile, dtype=np.float64)
    margin = overlap / 4.0
    width = max(overlap - 2 * margin, 1.0)
    w = np.ones(tile)
    if start > 0:  # interior left/top edge
        w = np.minimum(w, np.clip((d + 0.5 - margin) / width, 0.0, 1.0))
    if start + tile < length:  # interior right/bottom edge
        w = np.minimum(w, np.clip((tile - d - 0.5 - margin) / width, 0.0, 1.0))
    return w


def tile_windows(h: int, w: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    stride = max(tile - overlap, 1)
    return [(y, x) for y in _starts(h, tile, stride) for x in _starts(w, tile, stride)]


def tiled_apply(
    fn: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    *,
    scale: int,
    tile: int = 512,
    overlap: int = 32,
    batch: int = 4,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Apply ``fn`` (``(B, t, t, C) -> (B, t*scale, t*scale, C')``) to an ``(H, W, C)`` image.

    Images smaller than a tile are padded symmetrically to one tile, so every call of
    ``fn`` sees the same shape (the last batch is padded with zero tiles).
    """
    if tile < 1 or overlap < 0:
        raise ValueError(f"Tiles need a side >= 1 and an overlap >= 0 (got {tile}, {overlap}).")
    if overlap >= tile:
        raise ValueError(f"The tile overlap ({overlap}) must be smaller than the tile ({tile}).")
    h, w, _ = image.shape
    ph, pw = max(h, tile), max(w, tile)
    padded = np.pad(image, ((0, ph - h), (0, pw - w), (0, 0)), mode="symmetric")
    windows = tile_windows(ph, pw, tile, overlap)
    out = None
    norm = np.zeros((ph * scale, pw * scale, 1), np.float32)
    for chunk in _chunks(windows, batch):
        tiles = np.stack([padded[y : y + tile, x : x + tile] for y, x in chunk])
        if len(chunk) < batch:
            tiles = np.concatenate(
                [tiles, np.zeros((batch - len(chunk), *tiles.shape[1:]), tiles.dtype)]
            )
        result = np.asarray(fn(tiles), np.float32)
        if out is None:
            out = np.zeros((ph * scale, pw * scale, result.shape[-1]), np.float32)
        for (y, x), res in zip(chunk, result, strict=False):
            wy = np.repeat(_ramp(tile, y, ph, overlap), scale)
            wx = np.repeat(_ramp(tile, x, pw, overlap), scale)
            weight = (wy[:, None] * wx[None, :]).astype(np.float32)[..., None]
            ys, xs = slice(y * scale, (y + tile) * scale), slice(x * scale, (x + tile) * scale)
            out[ys, xs] += weight * res
            norm[ys, xs] += weight
        if progress is not None:
            progress(len(chunk))
    out /= np.maximum(norm, 1e-12)
    return out[: h * scale, : w * scale]


def _chunks(items: list, n: int) -> Iterator[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
