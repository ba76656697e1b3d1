"""Reading and writing image files robustly.

Everything the loaders and CLIs read goes through :func:`read_image`, which accepts
8- and 16-bit PNGs, JPEG, BMP, TIFF and WebP, in grayscale, RGB, palette or with an
alpha channel, and float or 32-bit integer TIFFs (the rule for their range is
:func:`_float_to_uint16`'s); it fails with :class:`ImageError` (a one-line reason) on
anything it cannot decode. Pictures are turned as their EXIF orientation says, as
viewers show them. Pillow silently truncates 48/64-bit PNGs to 8 bits, so 16-bit PNGs
are decoded with pypng instead. Writes are atomic: a temporary file in the same folder
is renamed over the target, so an interrupted run never leaves a half-written image.
"""

from __future__ import annotations

import dataclasses
import io
import os

import numpy as np
from PIL import Image, ImageOps

from jaxsr import files

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


class ImageError(ValueError):
    """An image file that cannot be used; the message names the file and the reason."""


@dataclasses.dataclass
class Picture:
    """Decoded pixels, ``(H, W, C)`` with C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA).

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


# EXIF orientations that turn the picture by 90 degrees (width and height swap).
_TRANSPOSING = (5, 6, 7, 8)
_ORIENTATION = 0x0112


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation of an opened image (1: as stored). Read from the header: a
    PNG's EXIF is looked at only when its chunk came before the pixels (Pillow would
    decode the whole image to look further, and sizes are read for every file)."""
    if im.format == "PNG" and "exif" not in im.info:
        return 1
    return im.getexif().get(_ORIENTATION, 1) or 1


def upright(im: Image.Image) -> Image.Image:
    """The picture as viewers show it: an EXIF orientation (a phone photo's "rotate 90")
    is applied to the pixels. Outputs carry no EXIF, so they show the same way."""
    return im if _orientation(im) == 1 else ImageOps.exif_transpose(im)


def _shown_size(im: Image.Image) -> tuple[int, int]:
    """``(height, width)`` as viewers show ``im`` (after its EXIF orientation)."""
    w, h = im.size
    return (w, h) if _orientation(im) in _TRANSPOSING else (h, w)


def _float_to_uint16(path: str, x: np.ndarray) -> np.ndarray:
    """A float image (TIFF mode ``F``) as 16-bit levels. Its range is read from the
    data, by one rule: all values in [0, 1] mean [0, 1], all values in [0, 255] (some
    above 1) mean [0, 255]; anything else (negative, above 255, NaN) is refused, since
    no convention says where its black and white are."""
    finite = bool(np.isfinite(x).all())
    lo, hi = (float(x.min()), float(x.max())) if finite else (0.0, 0.0)
    if not finite or lo < 0.0 or hi > 255.0:
        what = "NaN or infinite values" if not finite else f"values in [{lo:g}, {hi:g}]"
        raise ImageError(
            f"{path}: a floating-point image with {what}; jaxsr reads float images whose "
            "values lie in [0, 1] or in [0, 255]: rescale it into one of them."
        )
    white = 1.0 if hi <= 1.0 else 255.0
    return np.floor(x.astype(np.float64) * (65535.0 / white) + 0.5).astype(np.uint16)


def _int32_to_uint16(path: str, x: np.ndarray) -> np.ndarray:
    """A 32-bit integer image (TIFF mode ``I``) as 16-bit levels: values in [0, 65535]
    are kept; others are refused (converting them to 16 bits would wrap around)."""
    lo, hi = int(x.min()), int(x.max())
    if lo < 0 or hi > 65535:
        raise ImageError(
            f"{path}: a 32-bit integer image with values in [{lo}, {hi}]; jaxsr reads at most "
            "16 bits per channel (0-65535): rescale it and save it as a 16-bit image."
        )
    return x.astype(np.uint16)


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
    with Image.open(io.BytesIO(data)) as im:  # verify() leaves the image unusable
        return size[::-1] if _orientation(im) in _TRANSPOSING else size


def image_size(path: str) -> tuple[int, int]:
    """``(height, width)`` from the file's header (nothing decoded)."""
    problem = files.file_problem(path)
    if problem:
        raise ImageError(f"{path}: {problem}.")
    try:
        with files.open_read(path) as f, Image.open(f) as im:
            return _shown_size(im)
    except Exception as e:
        raise ImageError(f"{path}: cannot be read as an image ({type(e).__name__}: {e}).") from e


def read_image(path: str) -> Picture:
    """Decode ``path`` into a :class:`Picture`; raise :class:`ImageError` if it cannot be used."""
    data = _file_bytes(path)
    try:
        if _png_bit_depth(data) == 16:
            px = _read_png16(data)
        else:
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
                im = upright(opened)
                if im.mode == "I":  # 32-bit integers (TIFF): values past 16 bits are refused
                    px = _int32_to_uint16(path, np.asarray(im))[..., None]
                elif im.mode == "F":
                    px = _float_to_uint16(path, np.asarray(im))[..., None]
                elif im.mode in ("I;16", "I;16B", "I;16L"):
                    px = np.asarray(im).astype(np.uint16)[..., None]
                elif im.mode in ("L", "1"):
                    px = np.asarray(im.convert("L"))[..., None]
                elif im.mode == "LA":
                    px = np.asarray(im)  # gray + alpha, kept as two channels
                elif im.mode in ("RGBA", "PA") or (im.mode == "P" and "transparency" in im.info):
                    px = np.asarray(im.convert("RGBA"))
                else:
                    px = np.asarray(im.convert("RGB"))
    except ImageError:
        raise
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
