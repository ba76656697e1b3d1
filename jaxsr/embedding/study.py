"""The degradation-representation study (DASR, Sec. 4.2): train the encoder on some
photos, embed *other* photos under fixed degradations, and score the separation.

``run_study`` does the whole study for ``python -m jaxsr.embedding``:

1. split the photos of a folder by photo (seeded; ``split.json`` and two folders of
   links under the workdir, so a rerun resumes with the same split);
2. train DASR's stage 1 (the MoCo encoder) on the training photos through the normal
   training loop (``jaxsr.train.loop``, the same step as the full recipe), unless an
   already trained model is given;
3. embed the held-out photos under each setting (:mod:`.analysis`), for the trained
   encoder and for a randomly initialised one of the same shape (the reference line:
   how much of the separation the architecture gives before any training);
4. write ``embedding.json`` and one PNG per setting family (PCA and t-SNE panels).
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from jaxsr import files
from jaxsr.data.degradations import PAPER_ANISO_KERNELS, FixedDegradation
from jaxsr.data.images import ImageError, list_images, read_image
from jaxsr.data.sources import scan_files
from jaxsr.embedding.analysis import (
    degraded_views,
    embed_all,
    pca_2d,
    separation_scores,
    tsne_2d,
)
from jaxsr.embedding.plot import scatter_panels
from jaxsr.errors import UserError
from jaxsr.saved_model import load_model


@dataclasses.dataclass(frozen=True)
class StudyOptions:
    """What is held out and how the held-out photos are viewed."""

    data: str  # folder of photos
    heldout: int = 16  # photos kept out of training
    split_seed: int = 0
    sigmas: tuple[float, ...] = (0.2, 1.2, 2.4, 3.6)  # isotropic settings
    table3: bool = False  # also Table 3's anisotropic kernels × ``noises``
    noises: tuple[float, ...] = (0.0, 5.0, 10.0)
    crop: int = 48  # LR crop side of the patch view (the training LR patch)
    crops_per_photo: int = 8
    knn: int = 5
    seed: int = 0


def split_photos(workdir: str, opts: StudyOptions, min_size: int = 1) -> dict:
    """``{'train': [...], 'heldout': [...]}`` (file names), made once per workdir.

    Every photo is read through first (``scan_files``): one that cannot be decoded, is
    not a regular file or is smaller than ``min_size`` is left out with a warning now,
    not found after training. The training photos are linked into
    ``workdir/split/train`` (the loop's image folder), the held-out ones into
    ``workdir/split/heldout``.
    """
    try:
        photos = list_images(opts.data)
    except ImageError as e:
        raise UserError(f"{e} Pass --data=FOLDER of photos.") from None
    photos, _ = scan_files(photos, min_size)
    names = [os.path.basename(f) for f in photos]
    if len(names) < opts.heldout + 2:
        raise UserError(
            f"{opts.data} holds {len(names)} usable images (at least {min_size}x{min_size} "
            f"pixels); the study needs more than --heldout="
            f"{opts.heldout} + 1 (two or more to train on)."
        )
    perm = np.random.default_rng(opts.split_seed).permutation(len(names))
    split = {
        "data": files.absolute(opts.data),
        "seed": opts.split_seed,
        "heldout": sorted(names[i] for i in perm[: opts.heldout]),
        "train": sorted(names[i] for i in perm[opts.heldout :]),
    }
    path = os.path.join(workdir, "split.json")
    if files.exists(path):
        old = files.read_json(path, "study's split")
        if old != split:
            raise UserError(
                f"{workdir} was made with another split ({path}: {len(old['train'])} train / "
                f"{len(old['heldout'])} held out of {old['data']}, seed {old['seed']}); use a "
                "new --workdir or the same --data, --heldout and --split_seed."
            )
    for part in ("train", "heldout"):
        for name in split[part]:
            src = os.path.join(split["data"], name)
            files.link(src, os.path.join(workdir, "split", part, name))
    files.write_json_atomic(path, split)
    return split


def setting_families(scale: int, opts: StudyOptions, boundary: str) -> dict:
    """``{family: [FixedDegradation]}``: the isotropic widths, and optionally Table 3."""
    families = {"isotropic": [FixedDegradation(sigma=s, boundary=boundary) for s in opts.sigmas]}
    if opts.table3:
        families["table3"] = [
            FixedDegradation(aniso=k, noise=n, seed=opts.seed, boundary=boundary)
            for n in opts.noises
            for k in PAPER_ANISO_KERNELS
        ]
    return families


def train_encoder(config, workdir: str, *, allow_config_change: bool = False) -> None:
    """DASR stage 1 on ``workdir/split/train`` through the training loop (resumable)."""
    from jaxsr.train.loop import train_and_evaluate

    config = config.copy_and_resolve_references()
    config.data.train.kind = "folder"
    config.data.train.hr_dir = os.path.join(files.absolute(workdir), "split", "train")
    # The study is about the encoder: stage 1 for the whole run, no SR training.
    config.stages.encoder_steps = config.num_train_steps
    logging.info("Training the degradation encoder (stage 1) for %d steps.", config.num_train_steps)
    train_and_evaluate(config, workdir, allow_config_change=allow_config_change)


def heldout_photos(workdir: str, split: dict, scale: int) -> list[tuple[str, np.ndarray]]:
    photos = []
    for name in split["heldout"]:
        hr = read_image(os.path.join(workdir, "split", "heldout", name)).rgb_uint8()
        h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
        photos.append((name, hr[:h, :w]))
    return photos


def embed_fn(module, variables):
    """The jitted degradation embedding of a DASR model (eval-mode BatchNorm)."""
    return jax.jit(lambda lq: module.apply(variables, lq, method="embed"))


def score_and_plot(encoders: dict, photos, settings, *, scale: int, png: str, opts) -> dict:
    """Scores of each encoder ``{name: embed}`` on both views of ``photos`` under
    ``settings``; the first encoder's patch embeddings are plotted to ``png``."""
    names = [s.label for s in settings]
    views = degraded_views(
        photos,
        settings,
        scale=scale,
        crop=opts.crop,
        crops_per_photo=opts.crops_per_photo,
        seed=opts.seed,
    )
    results, plotted = {"settings": names}, next(iter(encoders))
    for who, embed in encoders.items():
        results[who] = {}
        for view, (lq, setting, photo) in views.items():
            emb = embed_all(embed, lq)
            results[who][view] = separation_scores(emb, setting, photo, names, k=opts.knn)
            if who == plotted and view == "patch":
                panels = [("PCA", pca_2d(emb)), ("t-SNE", tsne_2d(emb, opts.seed))]
                scatter_panels(panels, setting, photo, names, png)
    return results


def run_study(config, workdir: str, opts: StudyOptions, *, model: str = "", progress=None, **kw):
    """Train (unless ``model`` names a trained workdir/model dir), embed, score, plot;
    returns the summary written to ``workdir/embedding.json``."""
    if config.get("task") != "dasr":
        raise UserError(
            "The embedding study is about DASR's degradation encoder: pass "
            "--config=configs/dasr.py:study (or another DASR preset)."
        )
    if opts.heldout < 2:
        raise UserError(f"--heldout={opts.heldout}: leave-one-photo-out needs 2 or more photos.")
    files.makedirs(workdir)
    # Every photo, trained on or held out, must give at least one training patch.
    split = split_photos(workdir, opts, int(config.data.patch_size))
    if not model:
        train_encoder(config, workdir, **kw)
    module, variables = load_model(model or workdir)
    if not hasattr(module, "embed"):
        raise UserError(f"{model or workdir} holds no DASR model (no degradation encoder).")
    scale = int(module.scale)
    photos = heldout_photos(workdir, split, scale)
    boundary = config.degradation.boundary
    encoders = {
        "trained": embed_fn(module, variables),
        # The same network, randomly initialised: what the architecture gives untrained.
        "random_init": embed_fn(
            module, module.init(jax.random.key(opts.seed), jnp.zeros((1, 16, 16, 3)))
        ),
    }
    summary = {
        "data": split["data"],
        "train_photos": split["train"],
        "heldout_photos": split["heldout"],
        "encoder": files.absolute(model or workdir),
        "scale": scale,
        "training": None if model else _training(config),
        "options": dataclasses.asdict(opts),
        "results": {},
        "plots": {},
    }
    for family, settings in setting_families(scale, opts, boundary).items():
        png = os.path.join(workdir, f"embedding_{family}.png")
        summary["results"][family] = score_and_plot(
            encoders,
            photos if progress is None else progress(photos, family),
            settings,
            scale=scale,
            png=png,
            opts=opts,
        )
        summary["plots"][family] = png
    files.write_json_atomic(os.path.join(workdir, "embedding.json"), summary)
    return summary


def _training(config) -> dict:
    """The fields of the encoder's training that the study varies."""
    c = config
    return {
        "steps": int(c.num_train_steps),
        "batch_size": int(c.data.batch_size),
        "lr_patch": int(c.data.patch_size // c.scale),
        "encoder_widths": list(c.model.encoder_widths),
        **c.moco.to_dict(),
    }


def report(summary: dict) -> str:
    """The summary as a table (one line per family × encoder × view)."""
    k = summary["options"]["knn"]
    lines = [
        f"Degradation embedding of {len(summary['heldout_photos'])} held-out photos (never "
        f"trained on), leave-one-photo-out classification of the setting:",
        f"{'settings':<11}{'encoder':<12}{'view':<7}{'centroid':>9}{f'{k}-NN':>7}"
        f"{'within':>8}{'chance':>8}{'silhouette deg / photo':>24}",
    ]
    for family, res in summary["results"].items():
        for who in ("trained", "random_init"):
            for view, s in res[who].items():
                lines.append(
                    f"{family:<11}{who:<12}{view:<7}{s['nearest_centroid_accuracy']:>9.2f}"
                    f"{s[f'knn{k}_accuracy']:>7.2f}{_num(s['within_photo_nearest_centroid']):>8}"
                    f"{s['chance']:>8.2f}{s['silhouette_by_degradation']:>13.2f} / "
                    f"{s['silhouette_by_photo']:.2f}"
                )
        per = res["trained"]["patch"]["per_setting_nearest_centroid"]
        per = ", ".join(f"{n} {v:.2f}" for n, v in per.items())
        lines.append(f"  trained, patch view, per setting: {per}")
    lines.append("Plots: " + ", ".join(summary["plots"].values()))
    return "\n".join(lines)


def _num(x) -> str:
    return "-" if x is None else f"{x:.2f}"
