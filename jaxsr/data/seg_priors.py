"""Training data with a segmentation prior: (HR patch, class probabilities, category).

SFTGAN and SPSAGAN condition the generator on per-pixel class probabilities of the
outdoor-scene classes (``SEG_CLASSES``, the OutdoorSceneSeg network's output order),
at HR size. This module reads them as SFTGAN's ``LRHRseg_bg`` dataset does (spec §5.3):

* **OST layout**: ``hr_dir`` holds one folder per category (``animal``, ``building``,
  ``grass``, ``mountain``, ``plant``, ``sky``, ``water``); the discriminator's category
  label comes from the folder name (``CATEGORIES``; 0 = background, which its
  cross-entropy ignores). A flat folder works too: each patch is then labelled with the
  prior's dominant class.
* **Stored maps**: ``seg_dir`` mirrors ``hr_dir`` with one ``.npy`` (``H×W×K`` or
  ``K×H×W``) or ``.pth`` file (the ``K×H×W`` float tensor SFTGAN's ``test_segmentation.py``
  saves; read without torch) per image, same relative path and stem.
* **Computed maps**: without ``seg_dir``, the configured segmenter (a function from the
  LR image to HR-size probabilities, see :func:`load_segmenter`) makes each image's map
  once when the source is built, from the image's MATLAB-bicubic LR, as SFTGAN makes
  its maps from the bicubic-upsampled LR image.
* **Background patches**: with ``bg_dir`` (DIV2K in the paper), 1 sample in
  ``bg_ratio`` is a random background image with the prior fixed to class 0.

Host augmentation follows ``LRHRseg_bg``: a random rescale by one of ``rescales``
(bilinear for the photo, nearest for the map), a random patch aligned to the scale
grid, flips. The LR input is made from the HR patch inside the jitted step.

The ``builtin`` kind (the demo) uses the builtin training photos with the stand-in
segmenter ``builtin_clusters``: colour regions of the pix2pixHD demo's k-means palette,
*not* a semantic segmentation. It exercises the same code path; real priors come from
a real segmenter (``config.segmenter = 'module:function'``) or stored maps.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os

import ml_collections
import numpy as np
from absl import logging
from PIL import Image

from jaxsr import files
from jaxsr.data.images import IMAGE_EXTENSIONS, ImageError, read_image
from jaxsr.data.pipeline import batched_iterator
from jaxsr.data.sources import BUILTIN_TRAIN, builtin_photo, scan_files
from jaxsr.errors import UserError
from jaxsr.ops.imresize import imresize_uint8

# OutdoorSceneSeg's output channels (SFTGAN's test_segmentation.py), the prior's order.
SEG_CLASSES = ("background", "sky", "water", "grass", "mountain", "building", "plant", "animal")
# The discriminator's category labels as LRHRseg_bg assigns them from the folder name
# (checked in this order; 0 = background, ignored by the classification loss).
CATEGORIES = ("background", "building", "plant", "mountain", "water", "sky", "grass", "animal")
MAP_EXTENSIONS = (".npy", ".pth")


def seg_source_config(kind: str = "folder", hr_dir: str = "", seg_dir: str = ""):
    """A segmentation-prior training data block, as recipes write it."""
    return ml_collections.ConfigDict(
        dict(
            kind=kind,  # 'folder' (OST layout or flat) | 'builtin' (demo photos, stand-in prior)
            hr_dir=hr_dir,  # HR images, one sub-folder per category (OST) or flat
            seg_dir=seg_dir,  # stored probability maps mirroring hr_dir; '' = segmenter
            bg_dir="",  # background images (DIV2K), prior fixed to class 0; '' = none
            bg_ratio=10,  # 1 sample in bg_ratio is a background patch (when bg_dir is set)
            rescales=(1.0, 0.9, 0.8, 0.7, 0.6, 0.5),  # random rescale factors of an image
            max_images=0,  # use only the first N images; 0 = all
        )
    )


def check_seg_source_config(cfg, where: str = "data.train") -> None:
    if cfg.get("kind") not in ("folder", "builtin"):
        raise UserError(f"{where}.kind={cfg.get('kind')!r} must be 'folder' or 'builtin'.")
    if cfg.kind == "folder" and not cfg.get("hr_dir"):
        raise UserError(f"{where}.kind='folder' needs hr_dir: set --config.{where}.hr_dir=PATH.")
    for name in ("hr_dir", "seg_dir", "bg_dir"):
        path = cfg.get(name)
        if path and not files.isdir(path):
            raise UserError(f"{where}.{name}={path!r} is not a folder.")
    if int(cfg.get("bg_ratio", 10)) < 2:
        raise UserError(f"{where}.bg_ratio={cfg.bg_ratio} must be at least 2 (1 in N samples).")
    rescales = tuple(cfg.get("rescales", (1.0,)))
    if not rescales or not all(0 < float(r) <= 1 for r in rescales):
        raise UserError(f"{where}.rescales={rescales} must be factors in (0, 1].")


def category_of(relpath: str) -> int:
    """The discriminator label of an image from its path under ``hr_dir`` (0: none)."""
    lowered = relpath.lower()
    return next((i for i, c in enumerate(CATEGORIES) if i and c in lowered), 0)


def read_prob_map(path: str, num_classes: int) -> np.ndarray:
    """A stored probability map as float32 ``(H, W, num_classes)``."""
    try:
        if path.endswith(".pth"):
            from jaxsr.weights.torch_pickle import load_torch

            arr = load_torch(path)
        else:
            arr = files.load_numpy(path)
    except UserError:
        raise
    except Exception as e:
        raise ImageError(f"{path}: cannot read a probability map ({type(e).__name__}: {e}).") from e
    arr = np.asarray(arr, np.float32)
    if arr.ndim == 3 and arr.shape[0] == num_classes and arr.shape[-1] != num_classes:
        arr = arr.transpose(1, 2, 0)  # K×H×W as SFTGAN stores it
    if arr.ndim != 3 or arr.shape[-1] != num_classes:
        raise ImageError(
            f"{path}: a probability map must be H×W×{num_classes} or {num_classes}×H×W, "
            f"found shape {arr.shape}; set --config.model.num_classes to its class count."
        )
    if not np.isfinite(arr).all():
        raise ImageError(f"{path}: the probability map has NaN or infinite values.")
    return arr


# -- segmenters: LR uint8 (h, w, 3) -> HR-size probabilities (s·h, s·w, K) -------------


def builtin_clusters(lr: np.ndarray, scale: int) -> np.ndarray:
    """The demo's stand-in prior: the LR image bicubic-upsampled ×scale (OutdoorSceneSeg's
    input), its colour regions from the builtin palette (8 k-means colours of the
    builtin training photos, ``jaxsr.data.label_maps``), one-hot and smoothed over
    ``scale`` pixels so the maps are soft like a network's softmax."""
    from scipy.ndimage import gaussian_filter

    from jaxsr.data.label_maps import BUILTIN_CLASSES, builtin_label_maps

    up = imresize_uint8(np.ascontiguousarray(lr), float(scale))
    ids = builtin_label_maps(up)[0]
    onehot = np.eye(BUILTIN_CLASSES, dtype=np.float32)[ids]
    soft = gaussian_filter(onehot, sigma=(scale, scale, 0), mode="nearest")
    return soft / soft.sum(-1, keepdims=True)


SEGMENTERS = {"builtin_clusters": builtin_clusters}


def load_segmenter(spec: str):
    """``'builtin_clusters'`` or ``'package.module:function'`` (a function
    ``(lr uint8 HxWx3, scale) -> float (scale·H, scale·W, K)``), checked on one image."""
    if spec in SEGMENTERS:
        return SEGMENTERS[spec]
    module, _, name = spec.partition(":")
    if not module or not name:
        raise UserError(
            f"segmenter={spec!r} is neither {sorted(SEGMENTERS)} nor 'package.module:function'."
        )
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise UserError(f"segmenter={spec!r} cannot be imported ({e}).") from e
    if not callable(fn):
        raise UserError(f"segmenter={spec!r} is not a function.")
    return fn


def segment(segmenter, lr: np.ndarray, scale: int, num_classes: int) -> np.ndarray:
    """``segmenter(lr, scale)`` with its output checked (shape, finite), float32."""
    out = np.asarray(segmenter(lr, scale), np.float32)
    want = (lr.shape[0] * scale, lr.shape[1] * scale, num_classes)
    if out.shape != want or not np.isfinite(out).all():
        raise UserError(
            f"The segmenter returned {out.shape} (finite: {bool(np.isfinite(out).all())}) "
            f"for an LR image of {lr.shape[:2]}; it must return finite {want} probabilities."
        )
    return out


# -- the training source ---------------------------------------------------------------


@dataclasses.dataclass
class SegPriorSource:
    """``names``; ``images`` (arrays or paths); ``maps`` (arrays, paths or None = all
    background); ``categories`` (folder labels, or None: the patch's dominant class);
    ``backgrounds``: image paths mixed in 1 in ``bg_ratio``."""

    names: list[str]
    images: list
    maps: list
    categories: list
    backgrounds: list
    bg_ratio: int
    num_classes: int

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> int:
        return index  # loading happens in the augmentation, once the background draw is known

    def prior(self, item, shape) -> np.ndarray:
        if item is None:  # a background image: all probability on class 0
            out = np.zeros((*shape, self.num_classes), np.float32)
            out[..., 0] = 1
            return out
        arr = item if isinstance(item, np.ndarray) else read_prob_map(item, self.num_classes)
        if arr.shape[:2] != tuple(shape):
            raise UserError(
                f"A probability map is {arr.shape[0]}x{arr.shape[1]} but its image is "
                f"{shape[0]}x{shape[1]}; maps must be at HR size."
            )
        return np.asarray(arr, np.float32)


def _images_under(root: str) -> list[str]:
    return [r for r in files.walk_files(root) if r.lower().endswith(IMAGE_EXTENSIONS)]


def _stored_map(seg_dir: str, rel: str) -> str:
    stem = os.path.splitext(rel)[0]
    for ext in MAP_EXTENSIONS:
        if files.isfile(os.path.join(seg_dir, stem + ext)):
            return os.path.join(seg_dir, stem + ext)
    raise UserError(
        f"No probability map for {rel} in {seg_dir} (looked for {stem}.npy / {stem}.pth); "
        "every image needs one, or leave seg_dir empty to compute maps with the segmenter."
    )


def make_seg_source(cfg, *, scale: int, num_classes: int, min_size: int, segmenter=None):
    """The training source of a data block (``seg_source_config``)."""
    check_seg_source_config(cfg)
    if cfg.kind == "builtin":
        names = [n for n in BUILTIN_TRAIN if min(builtin_photo(n).shape[:2]) >= min_size]
        images = [builtin_photo(n) for n in names]
        rels, categories = names, [None] * len(names)
    else:
        # Read through once: damaged files and images below the patch are left out
        # with a warning each, as for every other image folder.
        images, _ = scan_files(
            [os.path.join(cfg.hr_dir, r) for r in _images_under(cfg.hr_dir)], min_size
        )
        if not images:
            raise UserError(f"No usable images under {cfg.hr_dir} (see the warnings above).")
        rels = [os.path.relpath(p, cfg.hr_dir) for p in images]
        has_folders = any("/" in r for r in rels)
        categories = [category_of(r) if has_folders else None for r in rels]
    if cfg.get("max_images"):
        rels, images, categories = (x[: cfg.max_images] for x in (rels, images, categories))
    if cfg.get("seg_dir"):
        maps = [_stored_map(cfg.seg_dir, r) for r in rels]
    else:
        if segmenter is None:
            raise UserError(
                "No stored probability maps (data.train.seg_dir) and no segmenter "
                "(config.segmenter) to compute them; set one of the two."
            )
        maps = []
        for r, img in zip(rels, images, strict=True):
            hr = _loaded(img, r)
            h, w = (hr.shape[0] // scale) * scale, (hr.shape[1] // scale) * scale
            lr = imresize_uint8(hr[:h, :w], 1.0 / scale)
            prior = segment(segmenter, lr, scale, num_classes)
            full = np.zeros((*hr.shape[:2], num_classes), np.float16)
            full[..., 0] = 1  # the mod-crop margin (< scale pixels) counts as background
            full[:h, :w] = prior
            maps.append(full)
        logging.info("Computed the segmentation prior of %d training images.", len(maps))
    backgrounds = []
    if cfg.get("bg_dir"):
        backgrounds, _ = scan_files(
            [os.path.join(cfg.bg_dir, r) for r in _images_under(cfg.bg_dir)], min_size
        )
        if not backgrounds:
            raise UserError(f"No usable images under bg_dir={cfg.bg_dir}.")
    return SegPriorSource(
        names=[str(r) for r in rels],
        images=images,
        maps=maps,
        categories=categories,
        backgrounds=backgrounds,
        bg_ratio=int(cfg.get("bg_ratio", 10)),
        num_classes=num_classes,
    )


def _loaded(item, name: str) -> np.ndarray:
    if isinstance(item, np.ndarray):
        return item
    try:
        return read_image(item).rgb_uint8()
    except ImageError as e:  # it was readable when the source was scanned
        raise UserError(
            f"{e} It was readable when the dataset was scanned at start, so it changed "
            f"since; restore or remove {name} and run again (a training run resumes)."
        ) from e


def _rescale(img: np.ndarray, prior: np.ndarray, factor: float, patch: int, scale: int):
    """LRHRseg_bg's random rescale: sides × factor, floored to the scale grid and at
    least the patch; bilinear for the photo, nearest for the map."""
    if factor == 1.0:
        return img, prior

    def side(n):
        return max(patch, int(n * factor) // scale * scale)

    size = (side(img.shape[1]), side(img.shape[0]))  # PIL: (width, height)
    img = np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BILINEAR))
    rows = np.arange(size[1]) * prior.shape[0] // size[1]
    cols = np.arange(size[0]) * prior.shape[1] // size[0]
    return img, prior[rows[:, None], cols]


def crop_with_prior(index, rng, *, source: SegPriorSource, patch, scale, rescales, hflip, rot):
    """One training example ``{'gt', 'seg', 'category'}`` (see the module docstring)."""
    if source.backgrounds and rng.integers(source.bg_ratio) == 0:
        path = source.backgrounds[rng.integers(len(source.backgrounds))]
        img, item, category = _loaded(path, path), None, 0
    else:
        img = _loaded(source.images[index], source.names[index])
        item, category = source.maps[index], source.categories[index]
    if min(img.shape[:2]) < patch:
        raise UserError(
            f"A training image of {img.shape[0]}x{img.shape[1]} is smaller than the "
            f"{patch}-pixel patch; remove it or lower data.patch_size."
        )
    prior = source.prior(item, img.shape[:2])
    img, prior = _rescale(img, prior, float(rng.choice(rescales)), patch, scale)
    y = rng.integers(0, (img.shape[0] - patch) // scale + 1) * scale
    x = rng.integers(0, (img.shape[1] - patch) // scale + 1) * scale
    img, prior = img[y : y + patch, x : x + patch], prior[y : y + patch, x : x + patch]
    flips = rng.random(3) < 0.5
    if hflip and flips[0]:
        img, prior = img[:, ::-1], prior[:, ::-1]
    if rot and flips[1]:
        img, prior = img[::-1], prior[::-1]
    if rot and flips[2]:
        img, prior = img.transpose(1, 0, 2), prior.transpose(1, 0, 2)
    if category is None:  # no folder label: the patch's dominant class of the prior
        category = int(np.asarray(prior, np.float32).mean((0, 1)).argmax())
    return {
        "gt": np.ascontiguousarray(img),
        "seg": np.ascontiguousarray(prior, dtype=np.float32),
        "category": np.int32(category),
    }


def seg_prior_dataset(config, segmenter=None, *, process_index: int = 0, process_count: int = 1):
    """This process's grain iterator of ``{'gt', 'seg', 'category'}`` batches."""
    data = config.data
    if data.patch_size % config.scale:
        raise UserError(
            f"The HR patch size {data.patch_size} is not divisible by the scale {config.scale}."
        )
    source = make_seg_source(
        data.train,
        scale=config.scale,
        num_classes=config.model.num_classes,
        min_size=data.patch_size,
        segmenter=segmenter,
    )
    logging.info(
        "Training on %d images with segmentation priors (%d background images, 1 in %d).",
        len(source),
        len(source.backgrounds),
        source.bg_ratio,
    )
    augment = functools.partial(
        crop_with_prior,
        source=source,
        patch=data.patch_size,
        scale=config.scale,
        rescales=tuple(float(r) for r in data.train.rescales),
        hflip=data.hflip,
        rot=data.rot,
    )
    return batched_iterator(
        source,
        augment,
        data,
        seed=config.seed,
        process_index=process_index,
        process_count=process_count,
    )
