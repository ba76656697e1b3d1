"""Evaluate SR models with the standard protocol: ``python -m jaxsr.evaluate``.

For each dataset (HR images), the LR input is MATLAB bicubic ×1/scale of the HR image
mod-cropped to the scale, quantised to uint8 (MATLAB's uint8 semantics); the SR output
is clipped and rounded to uint8; PSNR and SSIM are computed on the Y channel (BT.601)
with ``scale`` pixels shaved from each border. Bicubic upsampling (MATLAB) is always
reported beside the model.

Usage::

    python -m jaxsr.evaluate --workdir=DIR --data=builtin,/data/Set5/HR --scale=4
    python -m jaxsr.evaluate --model=bicubic --data=/data/Set14/HR --scale=4 --out=set14.json

Blind SR (DASR protocol, paper Tables 2 and 3): the LR images are made with fixed
Gaussian kernels (and seeded noise) instead of plain bicubic, one table row per
setting, one column per dataset, model / bicubic PSNR-Y in each cell::

    python -m jaxsr.evaluate --workdir=DIR --sigmas=0,1.2,2.4,3.6 --data=/data/Set5/HR
    python -m jaxsr.evaluate --workdir=DIR --aniso=table3 --noise=0,5,10 --data=/data/Set14/HR
    python -m jaxsr.evaluate --workdir=DIR --embedding-plot=emb.png   # DASR encoder study

A DASR model without ``--sigmas``/``--aniso`` is evaluated on Table 2's kernel widths.

``--data`` takes comma-separated entries: ``builtin`` (the fixed builtin eval photos) or
a folder of HR images. Results are printed as a table and written as JSON (``--out``,
default ``WORKDIR/eval.json`` or ``eval.json``).
"""

from __future__ import annotations

import os
import sys

import jax
import numpy as np

from jaxsr import metrics
from jaxsr.errors import UserError, cli
from jaxsr.files import write_json_atomic
from jaxsr.ops.color import to_uint8
from jaxsr.ops.imresize import imresize, imresize_uint8


def make_lr(hr_uint8: np.ndarray, scale: int) -> np.ndarray:
    """The benchmark LR image: MATLAB ``imresize(hr, 1/scale, 'bicubic')`` on uint8."""
    return imresize_uint8(hr_uint8, 1.0 / scale)


def bicubic_upscale(lr_uint8: np.ndarray, scale: int, size=None) -> np.ndarray:
    """MATLAB bicubic upscaling of a uint8 image, rounded back to uint8."""
    up = imresize(lr_uint8.astype(np.float64), scale, size)
    return np.clip(np.floor(up + 0.5), 0, 255).astype(np.uint8)


def score(sr_uint8, hr_uint8, *, crop_border: int, y_channel: bool) -> dict:
    kw = dict(crop_border=crop_border, y_channel=y_channel)
    return {
        "psnr": metrics.psnr(sr_uint8, hr_uint8, **kw),
        "ssim": metrics.ssim(sr_uint8, hr_uint8, **kw),
    }


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
) -> dict:
    """Score ``predict`` (and bicubic) on ``[(name, hr, lr or None)]``.

    Args:
      predict: ``lr float32 (1,h,w,3) in [0,1] -> sr (1,H,W,3)``, or ``None`` for
        bicubic only.
      keep_outputs: return the first N ``(lr↑bicubic, sr, hr)`` uint8 triples
        (for image grids).
      extra: optional ``(sr, hr) -> {name: value}`` on float [0, 1] batches of one
        image (e.g. the perceptual distance), averaged into ``result['model']``.
    Returns ``{'model': {...}, 'bicubic': {...}, 'per_image': [...], 'outputs': [...]}``
    with mean PSNR/SSIM.
    """
    crop = scale if crop_border is None else crop_border
    rows, outputs = [], []
    for index, (name, hr, lr) in enumerate(examples):
        if lr is None:
            lr = (
                make_lr(hr, scale)
                if degradation is None
                else degradation.apply(hr, scale=scale, index=index)
            )
        hr = hr[: lr.shape[0] * scale, : lr.shape[1] * scale]
        bic = bicubic_upscale(lr, scale, hr.shape[:2])
        row = {"image": name, "bicubic": score(bic, hr, crop_border=crop, y_channel=y_channel)}
        sr = None
        if predict is not None:
            out = np.asarray(predict(lr[None].astype(np.float32) / 255.0))[0]
            sr = to_uint8(out)
            if sr.shape != hr.shape:
                raise UserError(
                    f"The model produced {sr.shape} for {name}, expected {hr.shape}; "
                    "is --scale the model's scale?"
                )
            row["model"] = score(sr, hr, crop_border=crop, y_channel=y_channel)
            if extra is not None:
                row["model"].update(extra(sr[None] / np.float32(255), hr[None] / np.float32(255)))
        rows.append(row)
        if len(outputs) < keep_outputs:
            outputs.append((bic, sr if sr is not None else bic, hr))
    skipped = [{"image": n, "reason": r} for n, r in getattr(examples, "skipped", [])]
    result = {"per_image": rows, "outputs": outputs, "skipped": skipped}
    for key in ("bicubic", "model"):
        if rows and key in rows[0]:
            result[key] = {m: float(np.mean([r[key][m] for r in rows])) for m in rows[0][key]}
    return result


def format_table(results: dict[str, dict], title: str) -> str:
    """A console table: one row per dataset, PSNR/SSIM of model and bicubic."""
    lines = [title, f"{'dataset':<24}{'model PSNR/SSIM':>20}{'bicubic PSNR/SSIM':>22}"]
    for name, r in results.items():
        m = r.get("model")
        model = f"{m['psnr']:.2f} / {m['ssim']:.4f}" if m else "-"
        b = r["bicubic"]
        lines.append(f"{name:<24}{model:>20}{b['psnr']:>13.2f} / {b['ssim']:.4f}")
    return "\n".join(lines + skipped_lines(results))


def skipped_lines(results: dict[str, dict]) -> list[str]:
    """One line per dataset naming the images left out of its means."""
    lines = []
    for dataset, r in results.items():
        if r.get("skipped"):
            names = ", ".join(s["image"] for s in r["skipped"])
            lines.append(f"{dataset}: not scored (unreadable or too small): {names}")
    return lines


def format_blind_table(results: dict[str, dict[str, dict]], title: str) -> str:
    """Paper Table 2/3 layout: rows = degradation, columns = datasets, cells "model / bicubic"
    PSNR. ``results`` is ``{dataset: {degradation label: evaluate_examples result}}``."""
    datasets = list(results)
    labels = list(results[datasets[0]]) if datasets else []
    width = max([24] + [len(label) + 2 for label in labels])
    lines = [
        title,
        f"{'degradation':<{width}}" + "".join(f"{d[:20]:>22}" for d in datasets),
    ]
    for label in labels:
        cells = []
        for d in datasets:
            r = results[d][label]
            m = f"{r['model']['psnr']:.2f}" if "model" in r else "-"
            cells.append(f"{m + ' / ' + format(r['bicubic']['psnr'], '.2f'):>22}")
        lines.append(f"{label:<{width}}" + "".join(cells))
    firsts = {d: next(iter(per_label.values())) for d, per_label in results.items() if per_label}
    return "\n".join(lines + skipped_lines(firsts))


def dataset_config(entry: str):
    """``'builtin'``, an HR folder, or ``HR_FOLDER:LQ_FOLDER`` (paired, e.g. SIDD
    groundtruth:input) -> a data source config block."""
    import ml_collections

    if entry == "builtin":
        return ml_collections.ConfigDict({"kind": "builtin"})
    if ":" in entry:
        hr, lq = entry.split(":", 1)
        for folder in (hr, lq):
            if not os.path.isdir(folder):
                raise UserError(f"--data entry {entry!r}: {folder!r} is not a folder.")
        return ml_collections.ConfigDict({"kind": "folder", "hr_dir": hr, "lr_dir": lq})
    if not os.path.isdir(entry):
        raise UserError(
            f"--data entry {entry!r} is neither 'builtin' nor an existing folder of HR images."
        )
    return ml_collections.ConfigDict({"kind": "folder", "hr_dir": entry, "lr_dir": ""})


def load_predictor(path: str, ensemble: bool = False):
    """``(predict_fn, module, variables)`` for a training workdir or model directory;
    ``ensemble`` averages the model over the 8 flips/rotations of its input."""
    from jaxsr.ops.ensemble import self_ensemble
    from jaxsr.saved_model import load_model

    module, variables = load_model(path)
    apply = jax.jit(self_ensemble(module.apply) if ensemble else module.apply)
    return (lambda lq: apply(variables, lq)), module, variables


def parse_floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(
            f"{flag}={text!r}: expected comma-separated numbers, e.g. 0,1.2,2.4."
        ) from None


def parse_aniso(text: str) -> tuple[tuple[float, float, float], ...]:
    """Comma-separated ``l1/l2/theta_degrees`` entries; ``table3`` adds the paper's nine."""
    from jaxsr.data.degradations import PAPER_ANISO_KERNELS

    out = []
    for entry in text.split(","):
        if entry == "table3":
            out += PAPER_ANISO_KERNELS
            continue
        try:
            values = tuple(float(v) for v in entry.split("/"))
        except ValueError:
            values = ()
        if len(values) != 3:
            raise UserError(
                f"--aniso entry {entry!r}: expected lambda1/lambda2/theta_degrees "
                "(e.g. 3.5/1.5/30) or 'table3'."
            )
        out.append(values)
    return tuple(out)


@cli
def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m jaxsr.evaluate", description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--workdir", help="a training workdir or a model directory (jaxsr.convert)")
    src.add_argument("--model", choices=["bicubic"], help="a baseline instead of a trained model")
    p.add_argument(
        "--data",
        default="builtin",
        help="comma-separated: builtin, HR folders, or HR:LQ folder pairs",
    )
    p.add_argument("--scale", type=int, default=None, help="SR factor (default: the model's)")
    p.add_argument("--crop_border", type=int, default=None, help="pixels shaved (default: scale)")
    p.add_argument("--rgb", action="store_true", help="score RGB instead of the Y channel")
    p.add_argument("--out", default=None, help="JSON output path")
    p.add_argument(
        "--strict",
        action="store_true",
        help="stop on an unreadable evaluation image (default: leave it out and name it)",
    )
    p.add_argument("--sigmas", default="", help="blind SR: isotropic kernel widths, e.g. 0,1.2")
    p.add_argument("--aniso", default="", help="blind SR: 'table3' or l1/l2/theta_deg,...")
    p.add_argument("--noise", default="0", help="blind SR: noise levels (0-255 scale), e.g. 0,5")
    p.add_argument("--seed", type=int, default=0, help="blind SR: noise seed")
    p.add_argument(
        "--boundary",
        default="edge",
        choices=["edge", "symmetric"],
        help="blind SR: bicubic border rule ('edge' as DASR's code)",
    )
    p.add_argument(
        "--embedding-plot",
        dest="embedding_plot",
        default="",
        help="DASR: PCA plot of encoder embeddings coloured by blur width (PNG)",
    )
    p.add_argument(
        "--self-ensemble",
        dest="ensemble",
        action="store_true",
        help="average the model over the 8 flips/rotations of its input (x8 slower)",
    )
    p.add_argument(
        "--noise-sigma",
        dest="noise_sigma",
        type=float,
        default=0.0,
        help="denoising: add seeded Gaussian noise of this σ (0-255) instead of downscaling",
    )
    args = p.parse_args(argv)
    from jaxsr.data.degradations import eval_degradations
    from jaxsr.data.pipeline import eval_examples

    predict, module, variables = (
        (None, None, None) if args.model else load_predictor(args.workdir, args.ensemble)
    )
    model_scale = getattr(module, "scale", None)
    scale = args.scale or model_scale or 4
    if model_scale and scale != model_scale:
        raise UserError(f"--scale={scale} but the model in {args.workdir} is ×{model_scale}.")
    blind = bool(args.sigmas or args.aniso) or hasattr(module, "embed")
    degradations = [None]
    if args.noise_sigma:
        from jaxsr.tasks.restore import NoiseDegradation

        blind, degradations = True, [NoiseDegradation(args.noise_sigma, seed=args.seed)]
    elif blind:
        degradations = eval_degradations(
            scale=scale,
            sigmas=parse_floats(args.sigmas, "--sigmas"),
            aniso=parse_aniso(args.aniso) if args.aniso else (),
            noises=parse_floats(args.noise, "--noise"),
            seed=args.seed,
            boundary=args.boundary,
        )
    results, datasets = {}, {}
    for entry in [e for e in args.data.split(",") if e]:
        name = os.path.basename(entry.rstrip("/")) or entry
        datasets[name] = examples = eval_examples(
            dataset_config(entry), scale=scale, strict=args.strict
        )
        results[name] = {}
        for d in degradations:
            r = evaluate_examples(
                predict,
                examples,
                scale=scale,
                crop_border=args.crop_border,
                y_channel=not args.rgb,
                degradation=d,
            )
            r.pop("outputs")
            results[name][None if d is None else d.label] = r
    channel = "RGB" if args.rgb else "Y"
    border = scale if args.crop_border is None else args.crop_border
    title = f"×{scale}, PSNR/SSIM on {channel}, border {border}"
    if blind:
        print(format_blind_table(results, title + "; model / bicubic PSNR"))
    else:
        results = {name: r[None] for name, r in results.items()}
        print(format_table(results, title))
    report = {"scale": scale, "channel": channel, "crop_border": border, "datasets": results}
    if args.embedding_plot:
        if not hasattr(module, "embed"):
            raise UserError("--embedding-plot needs a DASR model (one with a degradation encoder).")
        from jaxsr.embedding import embedding_study

        photos = [(n, hr) for exs in datasets.values() for n, hr, _ in exs]
        report["embedding"] = embedding_study(
            jax.jit(lambda lq: module.apply(variables, lq, method="embed")),
            photos,
            scale=scale,
            out_png=args.embedding_plot,
            boundary=args.boundary,
            seed=args.seed,
        )
    out = args.out or os.path.join(args.workdir or ".", "eval.json")
    write_json_atomic(out, report)
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
