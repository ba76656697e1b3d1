"""Synthesise photos from label maps with a pix2pixHD generator.

    python -m jaxsr.synthesize --model=DIR --labels=DIR [--instances=DIR]
        [--features=FILE --style_seed=N] [--width=W] --output=DIR

``--model`` is a pix2pixHD training workdir (its config gives ``label_nc`` and the
input encoding) or a model directory from ``jaxsr.convert`` (then ``--label_nc``,
default 35 for Cityscapes). One PNG per label map, named after it, at the label map's
size (or ``--width`` wide, keeping the aspect ratio): the maps are resized (nearest)
to the nearest multiple of the generator's stride, and the result back (bicubic).
With instance features (a generator trained with ``instance_feat``), every instance
gets one of its class's cluster centres (``jaxsr.pix2pixhd_features``), drawn with
``--style_seed``: the same seed gives the same picture, other seeds other styles.
"""

from __future__ import annotations

import argparse
import os
import sys
import zlib

import numpy as np

from jaxsr import files
from jaxsr.cli_flags import add_flag, number
from jaxsr.data.images import ImageError, list_images, write_image
from jaxsr.data.label_maps import (
    check_same_size,
    label_key,
    read_instances,
    read_label,
)
from jaxsr.errors import UserError, cli
from jaxsr.eval.synthesis import Synthesizer, load_features
from jaxsr.saved_model import load_model_description
from jaxsr.train.workdir import CONFIG_FILE, load_config


@cli
def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jaxsr.synthesize", description=__doc__.split("\n")[0]
    )
    p.add_argument("--model", required=True, help="pix2pixHD workdir or model directory")
    p.add_argument("--labels", required=True, help="folder of label maps (*_labelIds.png)")
    p.add_argument("--instances", default="", help="folder of instance maps (same stems)")
    p.add_argument("--features", default="", help="cluster centres (.npz) for instance features")
    add_flag(p, "--style_seed", type=number(int, 0), default=0, help="draws the instance styles")
    p.add_argument(
        "--width", type=number(int, 0), default=0, help="output width (0: the label map's)"
    )
    add_flag(
        p,
        "--label_nc",
        type=number(int, 1),
        default=None,
        help="classes (default: the workdir's, or 35)",
    )
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    args = p.parse_args(argv)
    name, kwargs, variables = load_model_description(args.model)
    config = (
        load_config(args.model) if files.exists(os.path.join(args.model, CONFIG_FILE)) else None
    )
    try:
        synth = Synthesizer(
            name,
            kwargs,
            variables,
            config=config,
            label_nc=args.label_nc,
            centres=load_features(args.features) if args.features else None,
        )
    except UserError as e:
        raise UserError(f"--model={args.model}: {e}") from e
    try:
        labels = list_images(args.labels)
    except ImageError as e:
        raise UserError(f"--labels: {e}") from e
    if not labels:
        raise UserError(f"--labels: {args.labels} holds no label maps (image files).")
    inst_by = {}
    if synth.use_instance:
        if not args.instances:
            raise UserError("This generator reads instance edges: pass --instances=DIR.")
        try:
            inst_by = {label_key(q): q for q in list_images(args.instances)}
        except ImageError as e:
            raise UserError(f"--instances: {e}") from e
    for path in (args.labels, args.instances):
        if path and files.same_path(path, args.output):
            raise UserError(f"--output {args.output!r} is an input folder; choose another.")
    files.makedirs(args.output)
    for i, path in enumerate(labels, 1):
        dst = os.path.join(args.output, os.path.splitext(os.path.basename(path))[0] + ".png")
        if files.exists(dst) and not args.overwrite:
            print(f"[{i}/{len(labels)}] {dst} exists, kept (--overwrite replaces it)")
            continue
        try:
            label = read_label(path, synth.label_nc, flag="--label_nc")
            inst = None
            if synth.use_instance:
                if label_key(path) not in inst_by:
                    raise UserError(f"{path} has no instance map in {args.instances}.")
                inst = read_instances(inst_by[label_key(path)])
                check_same_size(path, label.shape[:2], inst_by[label_key(path)], inst.shape)
        except ImageError as e:
            raise UserError(str(e)) from e
        h, w = label.shape[:2]
        size = (h, w) if not args.width else (max(1, round(h * args.width / w)), args.width)
        # One generator per file: its styles depend on the seed and its name only.
        rng = np.random.default_rng([args.style_seed, zlib.crc32(os.path.basename(path).encode())])
        write_image(dst, synth(label, inst, size, rng))
        print(f"[{i}/{len(labels)}] {path} -> {dst} ({size[1]}x{size[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
