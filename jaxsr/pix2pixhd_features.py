"""Cluster pix2pixHD's instance features per class (the official ``encode_features.py``).

    python -m jaxsr.pix2pixhd_features --workdir=DIR --data=ROOT [--phase=train]
        [--n_clusters=10] [--out=FILE]

For a run trained with ``instance_feat``: the encoder E of the workdir's newest
checkpoint encodes every photo of ``ROOT/{phase}_img`` (with its instance map, resized
as at evaluation); for every instance the feature at its median pixel (raster order)
is kept with its area ``#pixels / (h·w // 32)``; instances with area ≤ 0.5 are
dropped; then per class (``id`` below 1000, else ``id // 1000``) k-means with
``K = min(#instances, n_clusters)`` and ``random_state=0`` (scikit-learn). The centres
go to ``DIR/features_clustered_010.npz`` (``class_<id>`` arrays), which
``jaxsr.synthesize --features`` reads. ``--data=builtin`` uses the demo's photos.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import files
from jaxsr.cli_flags import number, progress_bar
from jaxsr.data.label_maps import (
    label_source_config,
    make_label_source,
    resize_example,
    target_size,
)
from jaxsr.errors import UserError, cli
from jaxsr.tasks import make_task
from jaxsr.train.checkpoint import restore_raw_state
from jaxsr.train.workdir import load_config


def instance_features(feat: np.ndarray, inst: np.ndarray) -> dict[int, list[np.ndarray]]:
    """``{class: [feature + area]}`` of one image (``feat`` ``(H, W, C)`` instance-averaged,
    ``inst`` raw ids), as the official ``encode_features`` (``block_num`` 32)."""
    h, w = inst.shape
    out: dict[int, list[np.ndarray]] = {}
    for i in np.unique(inst):
        ys, xs = np.nonzero(inst == i)  # raster order, as torch's nonzero()
        mid = len(ys) // 2
        area = len(ys) / (h * w // 32)
        label = int(i) if i < 1000 else int(i) // 1000
        out.setdefault(label, []).append(np.append(feat[ys[mid], xs[mid]], area))
    return out


def cluster(features: dict[int, list[np.ndarray]], n_clusters: int) -> dict[int, np.ndarray]:
    """Per class, k-means centres of the features of instances with area > 0.5."""
    from sklearn.cluster import KMeans

    centres = {}
    for label, rows in sorted(features.items()):
        feat = np.asarray(rows)
        feat = feat[feat[:, -1] > 0.5, :-1]
        if len(feat):
            k = min(len(feat), n_clusters)
            centres[label] = (
                KMeans(n_clusters=k, random_state=0, n_init=10).fit(feat).cluster_centers_
            )
    return centres


def save_centres(path: str, centres: dict[int, np.ndarray]) -> None:
    with files.atomic_path(path, ".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **{f"class_{k}": v.astype(np.float32) for k, v in centres.items()})


@cli
def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jaxsr.pix2pixhd_features", description=__doc__.split("\n")[0]
    )
    p.add_argument("--workdir", required=True, help="a pix2pixHD run trained with instance_feat")
    p.add_argument("--data", required=True, help="dataset root (official layout) or 'builtin'")
    p.add_argument("--phase", default="train", help="which ROOT/{phase}_* folders")
    p.add_argument(
        "--n_clusters", type=number(int, 1), default=10, help="centres per class at most"
    )
    p.add_argument("--out", default="", help="output .npz (default in the workdir)")
    args = p.parse_args(argv)
    config = load_config(args.workdir)
    if config.get("task") != "pix2pixhd" or not config.get("instance_feat"):
        raise UserError(
            f"{args.workdir} is not a pix2pixHD run with instance features (instance_feat)."
        )
    task = make_task(config)
    params = restore_raw_state(args.workdir)["params"]["e"]
    cfg = (
        label_source_config("builtin")
        if args.data == "builtin"
        else label_source_config("folder", root=args.data, phase=args.phase)
    )
    source = make_label_source(cfg, label_nc=task.label_nc, instances=True)
    opts = task.transform_options(False)
    encode = jax.jit(task.encoder.apply)
    features: dict[int, list[np.ndarray]] = {}
    for i in progress_bar(range(len(source)), desc="encoding", unit="image"):
        ex = source[i]
        ex.pop("name")
        h, w = ex["label"].shape[:2]
        size = target_size(h, w, opts["mode"], opts["load_size"], opts["base"], rounded=True)
        ex = resize_example(ex, size)
        if len(np.unique(ex["inst"])) > config.max_instances:
            raise UserError(
                f"{source.names[i]} has more than max_instances={config.max_instances} "
                "instances; rerun with a larger --config.max_instances."
            )
        image = jnp.asarray(ex["image"], jnp.float32)[None] / 127.5 - 1.0
        feat = np.asarray(encode({"params": params}, image, jnp.asarray(ex["inst"])[None]))[0]
        for label, rows in instance_features(feat, ex["inst"]).items():
            features.setdefault(label, []).extend(rows)
    centres = cluster(features, args.n_clusters)
    out = args.out or os.path.join(args.workdir, f"features_clustered_{args.n_clusters:03d}.npz")
    save_centres(out, centres)
    n = sum(len(c) for c in centres.values())
    print(f"Wrote {out}: {n} centres for {len(centres)} classes from {len(source)} images.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
