"""Evaluate a model with the papers' protocol: ``python -m jaxsr.evaluate``.

For each dataset (HR images), the LR input is MATLAB bicubic ×1/scale of the HR image
mod-cropped to the scale, quantised to uint8 (MATLAB's uint8 semantics); the output
is clipped and rounded to uint8; PSNR and SSIM are computed on the Y channel (BT.601)
with ``scale`` pixels shaved from each border. Bicubic upsampling (MATLAB) is always
reported beside the model. The protocol itself lives in :mod:`jaxsr.eval`.

Usage::

    python -m jaxsr.evaluate --model=DIR --data=builtin,/data/Set5/HR --scale=4
    python -m jaxsr.evaluate --model=bicubic --data=/data/Set14/HR --scale=4 --out=set14.json

``--model`` is a training workdir, a model directory (``jaxsr.convert``) or
``bicubic`` (the baseline alone). Blind SR (DASR protocol, paper Tables 2 and 3): the
LR images are made with fixed Gaussian kernels (and seeded noise) instead of plain
bicubic, one table row per setting, one column per dataset, model / bicubic PSNR-Y in
each cell::

    python -m jaxsr.evaluate --model=DIR --sigmas=0,1.2,2.4,3.6 --data=/data/Set5/HR
    python -m jaxsr.evaluate --model=DIR --aniso=table3 --noise=0,5,10 --data=/data/Set14/HR
    python -m jaxsr.evaluate --model=DIR --embedding_plot=emb.png   # DASR: see jaxsr.embedding

A DASR model without ``--sigmas``/``--aniso`` is evaluated on Table 2's kernel widths.
``--realworld`` degrades each HR image by Real-ESRGAN's second-order pipeline instead
(seeded by ``--seed`` and the image's index), for real-world SR models.

``--no_reference`` takes folders of real low-resolution photos (no ground truth, as
Real-ESRGAN is used): NIQE of the model's output beside bicubic's, and with
``--pictures=DIR`` each photo written as bicubic | model side by side::

    python -m jaxsr.evaluate --model=DIR --data=/photos/lr --no_reference --pictures=look/

``--backend=onnxruntime`` scores an ``.onnx`` file (or a model exported to ONNX first,
``jaxsr.export``) with the same protocol; give a blind model its blind flags explicitly.

``--data`` takes comma-separated entries: ``builtin`` (the fixed builtin eval photos),
a folder of HR images, or ``HR:LQ`` folder pairs. Results are printed as a table and
written as JSON (``--out``, default ``MODEL/eval.json``, ``eval.json`` beside an
``.onnx`` file, or ``./eval.json`` for ``bicubic`` and published models by name).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from jaxsr import files, zoo
from jaxsr.cli_flags import add_flag, number, progress_bar
from jaxsr.data.images import ImageError, list_images, read_image, write_image
from jaxsr.data.pipeline import eval_examples
from jaxsr.deploy.export import onnx_image_model
from jaxsr.embedding import StudyOptions, embed_fn, score_and_plot
from jaxsr.errors import UserError, cli
from jaxsr.eval import evaluate_examples, format_blind_table, format_table
from jaxsr.eval.protocols import (
    NoiseDegradation,
    RealWorldDegradation,
    blind_protocols,
    dataset_config,
)
from jaxsr.eval.scoring import score_no_reference
from jaxsr.files import write_json_atomic
from jaxsr.metrics import NIQE_DEFINITIONS
from jaxsr.ops.color import to_uint8
from jaxsr.saved_model import load_model_and_task


def load_predictor(path: str, ensemble: bool = False, segmenter: str = ""):
    """``(predict_fn, module, variables, task class)`` for a training workdir or model
    directory; how the model is fed (``ensemble``, a ``segmenter`` prior) is its task's
    (``Task.predictor``)."""
    module, variables, task = load_model_and_task(path)
    try:
        predict = task.predictor(module, variables, ensemble=ensemble, segmenter=segmenter)
    except UserError as e:
        raise UserError(f"{path}: {e}") from e
    return predict, module, variables, task


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jaxsr.evaluate", description=__doc__.split("\n")[0])
    add_flag(
        p, "--model", aliases=["--workdir"], required=True, help="workdir, model dir or 'bicubic'"
    )
    p.add_argument(
        "--data", default="builtin", help="comma-separated: builtin, HR or HR:LQ folders"
    )
    p.add_argument(
        "--scale", type=number(int, 1), default=None, help="SR factor (default: the model's)"
    )
    p.add_argument(
        "--crop_border", type=number(int, 0), default=None, help="pixels shaved (default: scale)"
    )
    p.add_argument("--rgb", action="store_true", help="score RGB instead of the Y channel")
    p.add_argument(
        "--niqe",
        nargs="?",
        const="matlab",
        default="",
        choices=sorted(NIQE_DEFINITIONS),
        help="also score NIQE (no reference; lower = more natural) of model and baseline: "
        "'matlab' (float64, the reference; the default of a bare --niqe) or 'basicsr' "
        "(float32, BasicSR's numbers); they differ by up to 0.3",
    )
    p.add_argument("--out", default=None, help="JSON output path")
    p.add_argument(
        "--segmenter",
        default="",
        help="SFTGAN/SPSAGAN: the prior, 'builtin_clusters' or package.module:function",
    )
    p.add_argument("--strict", action="store_true", help="stop on an unreadable image")
    p.add_argument("--sigmas", default="", help="blind SR: isotropic kernel widths, e.g. 0,1.2")
    p.add_argument("--aniso", default="", help="blind SR: 'table3' or l1/l2/theta_deg,...")
    p.add_argument("--noise", default="0", help="blind SR: noise levels (0-255 scale), e.g. 0,5")
    p.add_argument(
        "--realworld",
        action="store_true",
        help="Real-ESRGAN's second-order degradations of each HR image (seeded by --seed)",
    )
    p.add_argument(
        "--seed",
        type=number(int, 0),
        default=0,
        help="noise seed (blind SR, denoising, --realworld)",
    )
    p.add_argument(
        "--boundary",
        default="edge",
        choices=["edge", "symmetric"],
        help="bicubic border rule ('edge' as DASR's code)",
    )
    add_flag(
        p, "--embedding_plot", default="", help="DASR: embedding scores + PCA/t-SNE plot (PNG)"
    )
    add_flag(p, "--self_ensemble", action="store_true", help="average over the 8 flips/rotations")
    add_flag(
        p,
        "--noise_sigma",
        type=number(float, 0.0),
        default=0.0,
        help="denoising: seeded Gaussian noise of this σ (0-255)",
    )
    p.add_argument(
        "--no_reference",
        action="store_true",
        help="--data folders hold real LR photos without ground truth: NIQE only",
    )
    p.add_argument(
        "--pictures", default="", help="with --no_reference: write bicubic | model images here"
    )
    p.add_argument(
        "--backend",
        default="jax",
        choices=["jax", "onnxruntime"],
        help="onnxruntime: an .onnx --model, or a jaxsr model exported to ONNX first",
    )
    return p


@cli
def main(argv=None) -> int:
    args = parser().parse_args(argv)
    baseline_only = args.model == "bicubic"
    if args.backend == "onnxruntime" and not baseline_only:
        if args.self_ensemble or args.segmenter or args.embedding_plot:
            raise UserError(
                "--self_ensemble, --segmenter and --embedding_plot run with --backend=jax only."
            )
        onnx_model = onnx_image_model(args.model)
        predict, module, variables, task = onnx_model, None, None, None
        model_scale = onnx_model.scale
    else:
        predict, module, variables, task = (
            (None, None, None, None)
            if baseline_only
            else load_predictor(args.model, args.self_ensemble, args.segmenter)
        )
        model_scale = getattr(module, "scale", None)
    scale = args.scale or model_scale or 4
    if model_scale and scale != model_scale:
        raise UserError(f"--scale={scale} but the model in {args.model} is ×{model_scale}.")
    if args.no_reference:
        report = no_reference(args, predict, scale)
        _write_report(args, report)
        return 0
    blind_model = task is not None and task.blind
    blind = bool(args.sigmas or args.aniso or args.noise_sigma) or blind_model
    protocols = [None]
    if args.realworld:
        if args.sigmas or args.aniso or args.noise_sigma:
            raise UserError("--realworld makes its own LR images; drop the blind SR flags.")
        protocols, blind = [RealWorldDegradation(args.seed)], False
    elif args.noise_sigma:
        protocols = [NoiseDegradation(args.noise_sigma, seed=args.seed)]
    elif blind:
        protocols = blind_protocols(
            scale,
            sigmas=args.sigmas,
            aniso=args.aniso,
            noise=args.noise,
            seed=args.seed,
            boundary=args.boundary,
        )
    results, datasets = {}, {}
    for entry in [e for e in args.data.split(",") if e]:
        name = os.path.basename(entry.rstrip("/")) or entry
        examples = eval_examples(dataset_config(entry), scale=scale, strict=args.strict)
        datasets[name] = examples
        results[name] = {}
        for protocol in protocols:
            r = evaluate_examples(
                predict,
                examples,
                scale=scale,
                crop_border=args.crop_border,
                y_channel=not args.rgb,
                degradation=protocol,
                niqe=args.niqe,
                progress=lambda items, desc=f"{name} {protocol.label if protocol else ''}": (
                    progress_bar(items, desc=desc.strip(), unit="image")
                ),
            )
            r.pop("outputs"), r.pop("images")
            results[name][None if protocol is None else protocol.label] = r
    channel = "RGB" if args.rgb else "Y"
    border = scale if args.crop_border is None else args.crop_border
    if blind:  # Paper Table 2/3: PSNR cells (SSIM is in the JSON)
        title = f"×{scale}, PSNR on {channel}, border {border}; model / bicubic"
        print(format_blind_table(results, title))
    else:
        title = f"×{scale}, PSNR/SSIM on {channel}, border {border}"
        if protocols[0] is not None:
            title += f", LR by {protocols[0].label}"
        results = {name: next(iter(r.values())) for name, r in results.items()}  # one protocol
        print(format_table(results, title))
    report = {"scale": scale, "channel": channel, "crop_border": border, "datasets": results}
    if args.embedding_plot:
        if not blind_model:
            raise UserError("--embedding_plot needs a DASR model (one with a degradation encoder).")
        photos = [(n, hr) for exs in datasets.values() for n, hr, _ in exs]
        png = args.embedding_plot
        scores = score_and_plot(
            {"model": embed_fn(module, variables)},
            photos,
            protocols,
            scale=scale,
            png=png,
            opts=StudyOptions(data="", seed=args.seed),
        )
        report["embedding"] = {"photos": [n for n, _ in photos], "plot": png, **scores}
        s = scores["model"]["patch"]
        print(
            f"Degradation embedding of {len(photos)} photos × {len(protocols)} settings, "
            f"leave-one-photo-out nearest-centroid accuracy {s['nearest_centroid_accuracy']:.2f}"
            f" (chance {s['chance']:.2f}), within photo "
            f"{s['within_photo_nearest_centroid']:.2f}; silhouette by degradation "
            f"{s['silhouette_by_degradation']:.2f}, by photo {s['silhouette_by_photo']:.2f}. "
            f"Plot: {png}"
        )
    _write_report(args, report)
    return 0


def _write_report(args, report: dict) -> None:
    # A published model's name is no folder of the user's: its report goes to ./.
    beside = "." if args.model == "bicubic" or zoo.is_name(args.model) else args.model
    if files.isfile(beside):  # an .onnx file: the report goes next to it
        beside = os.path.dirname(beside) or "."
    out = args.out or os.path.join(beside, "eval.json")
    write_json_atomic(out, report)
    print(f"Wrote {out}")


def no_reference(args, predict, scale: int) -> dict:
    """``--no_reference``: folders of real LR photos, no ground truth. NIQE of the
    model's output and of bicubic; with ``--pictures``, each photo as bicubic | model."""
    if predict is None:
        raise UserError("--no_reference scores a model beside bicubic; give --model=DIR.")
    niqe = args.niqe or "matlab"
    border = scale if args.crop_border is None else args.crop_border
    results = {}
    for entry in [e for e in args.data.split(",") if e]:
        if not files.isdir(entry):
            raise UserError(
                f"--no_reference takes folders of low-resolution photos; {entry!r} is not one."
            )
        photos, skipped = [], []
        for path in list_images(entry):
            try:
                photos.append((os.path.basename(path), to_uint8(read_image(path).rgb_float())))
            except ImageError as e:
                if args.strict:
                    raise UserError(f"{e} (drop --strict to score the others)") from None
                skipped.append({"image": os.path.basename(path), "reason": str(e)})
        name = os.path.basename(entry.rstrip("/")) or entry

        def picture(image, bic, sr, folder=name):
            stem = os.path.splitext(image)[0]
            side_by_side = np.concatenate([bic, sr], axis=1)
            write_image(os.path.join(args.pictures, f"{folder}_{stem}.png"), side_by_side)

        r = score_no_reference(
            predict,
            photos,
            scale=scale,
            crop_border=border,
            niqe=niqe,
            progress=lambda items, desc=name: progress_bar(items, desc=desc, unit="image"),
            each=picture if args.pictures else None,
        )
        results[name] = {**r, "skipped": skipped + r["skipped"]}
    key = f"niqe_{niqe}"
    print(f"×{scale}, no reference: NIQE ({niqe}; lower = more natural), border {border}")
    for name, r in results.items():
        scored = [x for x in r["per_image"] if x["model"][key] == x["model"][key]]  # not NaN
        print(
            f"{name:<24} model {r['model'][key]:.3f} / bicubic {r['bicubic'][key]:.3f} "
            f"({len(scored)} photos scored)"
        )
        for x in r["per_image"]:
            if x not in scored:
                print(f"  {x['image']}: too small for NIQE, left out", file=sys.stderr)
        for x in r["skipped"]:
            print(f"  {x['image']}: left out: {x['reason']}", file=sys.stderr)
    if args.pictures:
        print(f"Pictures (bicubic | model) in {args.pictures}")
    return {
        "scale": scale,
        "no_reference": True,
        "niqe": niqe,
        "crop_border": border,
        "datasets": results,
    }


if __name__ == "__main__":
    sys.exit(main())
