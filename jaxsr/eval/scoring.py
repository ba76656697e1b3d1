"""The evaluation protocol of SR and restoration papers, as a library.

For each image of a set (HR, optionally with its paired LQ input) the LR input is
MATLAB bicubic ×1/scale of the HR image mod-cropped to the scale, quantised to uint8
(MATLAB's uint8 semantics) — or made by a fixed degradation (blind SR, denoising);
the output is clipped and rounded to uint8; PSNR and SSIM are computed on the Y
channel (BT.601) or on RGB, with ``crop_border`` pixels shaved from each border. The
baseline (bicubic upsampling, or the degraded input itself for same-size
restoration) is always scored beside the model. Used by the training loop and by
``python -m jaxsr.evaluate`` alike.
"""

from __future__ import annotations

import numpy as np

from jaxsr import metrics
from jaxsr.errors import UserError
from jaxsr.ops.color import to_uint8
from jaxsr.ops.imresize import imresize, imresize_uint8


def make_lr(hr_uint8: np.ndarray, scale: int) -> np.ndarray:
    """The benchmark LR image: MATLAB ``imresize(hr, 1/scale, 'bicubic')`` on uint8."""
    return imresize_uint8(hr_uint8, 1.0 / scale)


def bicubic_upscale(lr_uint8: np.ndarray, scale: int, size=None) -> np.ndarray:
    """MATLAB bicubic upscaling of a uint8 image, rounded back to uint8."""
    up = imresize(lr_uint8.astype(np.float64), scale, size)
    return np.clip(np.floor(up + 0.5), 0, 255).astype(np.uint8)


def score(sr_uint8, hr_uint8, *, crop_border: int, y_channel: bool, niqe: str = "") -> dict:
    """PSNR and SSIM against the HR image; with ``niqe`` (a definition of
    ``metrics.NIQE_DEFINITIONS``), the no-reference NIQE of the output too, as
    ``niqe_<definition>`` (NaN when it has fewer than two textured 96×96 blocks)."""
    kw = dict(crop_border=crop_border, y_channel=y_channel)
    out = {
        "psnr": metrics.psnr(sr_uint8, hr_uint8, **kw),
        "ssim": metrics.ssim(sr_uint8, hr_uint8, **kw),
    }
    if niqe:
        out[f"niqe_{niqe}"] = niqe_or_nan(sr_uint8, crop_border=crop_border, niqe=niqe)
    return out


def niqe_or_nan(img_uint8, *, crop_border: int, niqe: str) -> float:
    """NIQE of the ``niqe`` definition; NaN (left out of means) under two textured blocks."""
    try:
        return metrics.niqe(
            img_uint8, crop_border=crop_border, dtype=metrics.NIQE_DEFINITIONS[niqe]
        )
    except ValueError:
        return float("nan")


def score_no_reference(
    predict, photos, *, scale: int, crop_border: int, niqe: str, progress=None, each=None
):
    """Real LR photos without ground truth (Real-ESRGAN's use): NIQE of the model's
    output and of MATLAB bicubic ×scale of the same photo, per image and averaged.

    ``photos`` is ``[(name, lr uint8 (h, w, 3))]``; ``each(name, bicubic, sr)`` is called
    with every photo's uint8 outputs as they are made (none are kept). Returns
    ``{"per_image": [...], "model": {...}, "bicubic": {...}}``.
    """
    key, rows, skipped = f"niqe_{niqe}", [], []
    for name, lr in progress(photos) if progress else photos:
        h, w = lr.shape[:2]
        bic = bicubic_upscale(lr, scale, (h * scale, w * scale))
        try:
            sr = to_uint8(np.asarray(predict(lr[None].astype(np.float32) / 255.0))[0])
        except UserError as e:  # the model failed on this photo: the others go on
            skipped.append({"image": name, "reason": str(e)})
            continue
        if sr.shape != bic.shape:
            raise UserError(f"The model produced {sr.shape} for {name}, expected {bic.shape}.")
        rows.append(
            {
                "image": name,
                "model": {key: niqe_or_nan(sr, crop_border=crop_border, niqe=niqe)},
                "bicubic": {key: niqe_or_nan(bic, crop_border=crop_border, niqe=niqe)},
            }
        )
        if each is not None:
            each(name, bic, sr)
    result = {"per_image": rows, "skipped": skipped}
    for side in ("model", "bicubic"):
        result[side] = {key: _mean([r[side][key] for r in rows])}
    return result


def evaluate_examples(
    predict,
    examples,
    *,
    scale: int,
    crop_border: int | None = None,
    y_channel: bool = True,
    keep_outputs: int = 0,
    extra=None,
    degradation=None,
    niqe: str = "",
    progress=None,
) -> dict:
    """Score ``predict`` (and bicubic) on ``[(name, hr, lr or None)]``.

    Args:
      predict: ``lr float32 (1,h,w,3) in [0,1] -> sr (1,H,W,3)``, or ``None`` for
        bicubic only. It may return ``(sr, {name: image batch})``: diagnostic images
        (SPSAGAN's attention maps), kept for the first image as ``result['images']``.
      keep_outputs: return the first N ``(lr↑bicubic, sr, hr)`` uint8 triples
        (for image grids).
      extra: optional ``(sr, hr) -> {name: value}`` on float [0, 1] batches of one
        image (e.g. the perceptual distance), averaged into ``result['model']``.
      niqe: also score NIQE (no reference) of the model's and the baseline's outputs,
        by this definition (``'matlab'`` or ``'basicsr'``; ``''`` for none).
      progress: optional wrapper of the examples' iterable (a progress bar).
    Returns ``{'model': {...}, 'bicubic': {...}, 'per_image': [...], 'outputs': [...]}``
    with mean PSNR/SSIM.
    """
    crop = scale if crop_border is None else crop_border
    rows, outputs, images = [], [], {}
    for index, (name, hr, lr) in enumerate(examples if progress is None else progress(examples)):
        if lr is None:
            lr = (
                make_lr(hr, scale)
                if degradation is None
                else degradation.apply(hr, scale=scale, index=index)
            )
        hr = hr[: lr.shape[0] * scale, : lr.shape[1] * scale]
        bic = bicubic_upscale(lr, scale, hr.shape[:2])
        kw = dict(crop_border=crop, y_channel=y_channel, niqe=niqe)
        row = {"image": name, "bicubic": score(bic, hr, **kw)}
        sr = None
        if predict is not None:
            out = predict(lr[None].astype(np.float32) / 255.0)
            if isinstance(out, tuple):
                out, diagnostics = out
                if index == 0:
                    images = {k: np.asarray(v) for k, v in diagnostics.items()}
            sr = to_uint8(np.asarray(out)[0])
            if sr.shape != hr.shape:
                raise UserError(
                    f"The model produced {sr.shape} for {name}, expected {hr.shape}; "
                    "is --scale the model's scale?"
                )
            row["model"] = score(sr, hr, **kw)
            if extra is not None:
                row["model"].update(extra(sr[None] / np.float32(255), hr[None] / np.float32(255)))
        rows.append(row)
        if len(outputs) < keep_outputs:
            outputs.append((bic, sr if sr is not None else bic, hr))
    skipped = [{"image": n, "reason": r} for n, r in getattr(examples, "skipped", [])]
    result = {"per_image": rows, "outputs": outputs, "skipped": skipped, "images": images}
    for key in ("bicubic", "model"):
        if rows and key in rows[0]:
            result[key] = {m: _mean([r[key][m] for r in rows]) for m in rows[0][key]}
    return result


def _mean(values: list[float]) -> float:
    """Mean over the images that have a score (NIQE is NaN below two textured blocks)."""
    values = np.asarray(values, np.float64)
    scored = values[~np.isnan(values)]
    return float(scored.mean()) if scored.size else float("nan")
