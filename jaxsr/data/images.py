"""Reading and writing image files robustly.

Everything the loaders and CLIs read goes through :func:`read_image`, which accepts
8- and 16-bit PNGs, JPEG, BMP, TIFF and WebP, in grayscale, RGB, palette or with an
alpha channel, and fails with :class:`ImageError` (a one-line reason) on anything it
cannot decode. Pillow silently truncates 48/64-bit PNGs to 8 bits, so 16-bit PNGs are
decoded with pypng instead. Writes are atomic: a temporary file in the same folder is
renamed over the target, so an interrupted run never leaves a half-written image.
"""

from __future__ import annotations

import dataclasses
import io
import os

import numpy as np
from PIL import Image

from jaxsr import files

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


class ImageError(ValueError):
    """An image file that cannot be used; the message names the file and the reason."""


@dataclasses.dataclass
class Picture:
    """Decoded pixels, ``(H, W, C)`` with C = 1 (gray), 3 (RGB) or 4 (RGBA).

    ``pixels`` is uint8 or uint16 as stored in the file.
    """

    pixels: np.ndarray

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def max_value(self) -> int:
        return 65535 if self.bit_depth == 16 else 255

    def rgb_float(self) -> np.ndarray:
        """RGB float32 in [0, 1]; gray is replicated and alpha dropped."""
        x = self.pixels[..., :3] if self.pixels.shape[-1] >= 3 else self.pixels[..., :1]
        if x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        return x.astype(np.float32) / self.max_value

    def rgb_uint8(self) -> np.ndarray:
        """RGB uint8; 16-bit values are rounded to 8 bits."""
        rgb = self.pixels[..., :3] if self.pixels.shape[-1] >= 3 else self.pixels[..., :1]
        if rgb.shape[-1] == 1:
            rgb = np.repeat(rgb, 3, axis=-1)
        if rgb.dtype == np.uint16:
            rgb = np.floor(rgb.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
        return np.ascontiguousarray(rgb)


def _png_bit_depth(data: bytes) -> int | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 25:
        return data[24]
    return None


def _read_png16(data: bytes) -> np.ndarray:
    import png  # pypng

    width, height, rows, info = png.Reader(bytes=data).asDirect()
    data = np.vstack([np.asarray(r, np.uint16) for r in rows])
    return data.reshape(height, width, info["planes"])


def _file_bytes(path: str) -> bytes:
    problem = files.file_problem(path)
    if problem:  # a FIFO would block the decoder; a link loop is not "no such file"
        raise ImageError(f"{path}: {problem}.")
    try:
        return files.read_bytes(path)
    except OSError as e:
        raise ImageError(f"{path}: cannot be read ({e.strerror or e}).") from e


def verify_image(path: str) -> tuple[int, int]:
    """``(height, width)`` after reading the whole file, so that a truncated or damaged
    image is caught now rather than when a batch needs it: PNG chunks are checked
    against their CRCs, JPEG streams are entropy-decoded at 1/8 size (every byte is
    read), other formats are decoded in full. Raises :class:`ImageError`."""
    data = _file_bytes(path)
    try:
        with Image.open(io.BytesIO(data)) as im:
            size = im.size[1], im.size[0]
            if im.format == "PNG":
                im.verify()
            else:
                if im.format == "JPEG":
                    im.draft(im.mode, (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
                im.load()
    except Exception as e:  # Pillow raises many types for damaged files
        raise ImageError(f"{path}: damaged or truncated image ({type(e).__name__}: {e}).") from e
    return size


def image_size(path: str) -> tuple[int, int]:
    """``(height, width)`` from the file's header (nothing decoded)."""
    problem = files.file_problem(path)
    if problem:
        raise ImageError(f"{path}: {problem}.")
    try:
        with files.open_read(path) as f, Image.open(f) as im:
            return im.size[1], im.size[0]
    except Exception as e:
        raise ImageError(f"{path}: cannot be read as an image ({type(e).__name__}: {e}).") from e


def read_image(path: str) -> Picture:
    """Decode ``path`` into a :class:`Picture`; raise :class:`ImageError` if it cannot be used."""
    data = _file_bytes(path)
    try:
        if _png_bit_depth(data) == 16:
            px = _read_png16(data)
        else:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                    px = np.asarray(im).astype(np.uint16)[..., None]
                elif im.mode in ("L", "1"):
                    px = np.asarray(im.convert("L"))[..., None]
                elif im.mode == "LA":
                    px = np.asarray(im)  # gray + alpha
                    px = np.concatenate([np.repeat(px[..., :1], 3, -1), px[..., 1:]], -1)
                elif im.mode in ("RGBA", "PA") or (im.mode == "P" and "transparency" in im.info):
                    px = np.asarray(im.convert("RGBA"))
                else:
                    px = np.asarray(im.convert("RGB"))
    except Exception as e:  # Pillow and pypng raise many types for damaged files
        raise ImageError(f"{path}: cannot decode image ({type(e).__name__}: {e}).") from e
    if px.ndim != 3 or px.shape[0] == 0 or px.shape[1] == 0:
        raise ImageError(f"{path}: decoded to an empty or malformed array {px.shape}.")
    return Picture(np.ascontiguousarray(px))


def write_image(path: str, pixels: np.ndarray) -> None:
    """Atomically write uint8/uint16 ``(H, W, C)`` pixels; the format follows the extension.

    16-bit data is written with pypng (PNG only).
    """
    ext = os.path.splitext(path)[1].lower()
    if pixels.dtype == np.uint16 and ext != ".png":
        raise ImageError(f"{path}: 16-bit output needs a .png file name.")
    with files.atomic_path(path, ext) as tmp:
        if pixels.dtype == np.uint16:
            import png

            h, w, c = pixels.shape
            writer = png.Writer(w, h, greyscale=c in (1, 2), alpha=c in (2, 4), bitdepth=16)
            with open(tmp, "wb") as f:
                writer.write(f, pixels.reshape(h, w * c).tolist())
        else:
            px = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
            Image.fromarray(px).save(tmp, format=Image.registered_extensions().get(ext))


def list_images(folder: str) -> list[str]:
    """Sorted image files directly inside ``folder`` (local or ``gs://``)."""
    if not files.isdir(folder):
        raise ImageError(f"{folder}: no such folder.")
    return [
        os.path.join(folder, f)
        for f in files.listdir(folder)
        if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")
    ]
