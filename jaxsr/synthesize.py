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

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import files
from jaxsr.cli_flags import add_flag
from jaxsr.data.images import ImageError, list_images, write_image
from jaxsr.data.label_maps import (
    check_same_size,
    label_key,
    read_instances,
    read_label,
    resize_example,
    target_size,
)
from jaxsr.errors import UserError, cli
from jaxsr.models import build_model
from jaxsr.ops.labels import encode_labels
from jaxsr.saved_model import load_model_description
from jaxsr.train.workdir import CONFIG_FILE, load_config


def load_features(path: str) -> dict[int, np.ndarray]:
    """``{class id: (K, feat_num) cluster centres}`` from ``jaxsr.pix2pixhd_features``."""
    try:
        arrays = files.load_numpy(path)
        return {int(k.split("_")[1]): np.asarray(v, np.float32) for k, v in arrays.items()}
    except (OSError, ValueError, IndexError, AttributeError) as e:
        raise UserError(f"--features={path!r} cannot be read as cluster centres ({e}).") from e


def sample_feature_map(inst: np.ndarray, centres: dict, feat_num: int, rng) -> np.ndarray:
    """``(H, W, feat_num)``: each instance painted with a random centre of its class
    (``id`` for ids < 1000, else ``id // 1000``), in increasing id order so a seed
    fixes the picture; instances of classes without centres stay 0."""
    out = np.zeros((*inst.shape, feat_num), np.float32)
    for i in np.unique(inst):
        label = int(i) if i < 1000 else int(i) // 1000
        if label in centres:
            feat = centres[label]
            out[inst == i] = feat[rng.integers(0, feat.shape[0])]
    return out


class Synthesizer:
    """A pix2pixHD generator and its input encoding."""

    def __init__(self, model: str, label_nc: int | None, features: str | None):
        name, kwargs, variables = load_model_description(model)
        if name not in ("pix2pixhd_global", "pix2pixhd_local"):
            raise UserError(f"--model={model!r} holds a {name} model, not a pix2pixHD generator.")
        self.module, self.variables = build_model(name, **kwargs), variables
        depth = kwargs.get("n_downsampling", kwargs.get("n_downsample_global", 0))
        self.base = 2 ** (depth + kwargs.get("n_local_enhancers", 0))
        first = variables["params"].get("global", variables["params"])["conv_in"]["kernel"]
        in_ch = int(first.shape[2])
        self.feat_num = 0
        self.centres = load_features(features) if features else None
        if files.exists(os.path.join(model, CONFIG_FILE)):
            config = load_config(model)
            self.label_nc = int(config.label_nc) if label_nc is None else label_nc
            self.use_instance = not config.no_instance
            self.feat_num = config.encoder.feat_num if config.instance_feat else 0
        else:
            self.label_nc = 35 if label_nc is None else label_nc
            self.use_instance = True
            if self.centres:
                self.feat_num = next(iter(self.centres.values())).shape[1]
            # The edge channel is there when one channel is left over.
            self.use_instance = in_ch - (self.label_nc or 3) - self.feat_num == 1
        want = (self.label_nc or 3) + int(self.use_instance) + self.feat_num
        if want != in_ch:
            parts = f"label_nc={self.label_nc}" + (" + 1 edge" if self.use_instance else "")
            parts += f" + {self.feat_num} features" if self.feat_num else ""
            raise UserError(
                f"The generator takes {in_ch} input channels, but {parts} make {want}; set "
                "--label_nc to its number of classes (35 for Cityscapes), and --features for "
                "a model trained with instance features."
            )
        if self.feat_num and not self.centres:
            raise UserError(
                "This generator was trained with instance features: pass --features=FILE "
                "(cluster centres from python -m jaxsr.pix2pixhd_features)."
            )
        self._apply = jax.jit(self.module.apply)

    def __call__(self, label: np.ndarray, inst, size_hw, rng) -> np.ndarray:
        """uint8 RGB ``size_hw`` photo of one label map (+ instance map)."""
        h, w = target_size(*size_hw, "none", 0, self.base)
        maps = resize_example(
            {"label": label, **({"inst": inst} if inst is not None else {})}, (h, w)
        )
        x = encode_labels(
            jnp.asarray(maps["label"])[None],
            jnp.asarray(maps["inst"])[None] if inst is not None else None,
            self.label_nc,
        )
        if self.feat_num:
            feat = sample_feature_map(maps["inst"], self.centres, self.feat_num, rng)
            x = jnp.concatenate([x, jnp.asarray(feat)[None]], -1)
        out = np.asarray(self._apply(self.variables, x))[0]
        photo = np.clip(np.round((out + 1.0) * 127.5), 0, 255).astype(np.uint8)
        return resize_example({"image": photo}, size_hw)["image"]


@cli
def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jaxsr.synthesize", description=__doc__.split("\n")[0]
    )
    p.add_argument("--model", required=True, help="pix2pixHD workdir or model directory")
    p.add_argument("--labels", required=True, help="folder of label maps (*_labelIds.png)")
    p.add_argument("--instances", default="", help="folder of instance maps (same stems)")
    p.add_argument("--features", default="", help="cluster centres (.npz) for instance features")
    add_flag(p, "--style_seed", type=int, default=0, help="draws the instance styles")
    p.add_argument("--width", type=int, default=0, help="output width (0: the label map's)")
    add_flag(
        p, "--label_nc", type=int, default=None, help="classes (default: the workdir's, or 35)"
    )
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    args = p.parse_args(argv)
    synth = Synthesizer(args.model, args.label_nc, args.features or None)
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
