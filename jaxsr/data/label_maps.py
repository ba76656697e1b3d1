"""Semantic label maps paired with instance maps and photos (pix2pixHD's data).

Two kinds of source, as a config block (``label_source_config``)::

    kind: 'folder'   the official layout ROOT/{phase}_label, {phase}_inst, {phase}_img
                     (Cityscapes: *_gtFine_labelIds.png 8-bit, *_gtFine_instanceIds.png
                     16-bit, *_leftImg8bit.png), paired by file stem with the Cityscapes
                     suffixes removed; {phase}_img is optional at test time.
    kind: 'builtin'  label/instance maps derived from the builtin photos, so the demo
                     runs anywhere: coarse regions of k-means colour clusters fitted on
                     the training split (the classes) and the connected regions of each
                     cluster (the instances). A stand-in for real annotations; the split
                     is in ``builtin_split``.

Every file is checked when the source is built: a label id ≥ ``label_nc``, a missing
instance file or photo, or sizes that disagree stop with one sentence naming the file.

Host-side preprocessing follows the official ``resize_or_crop`` (``scale_width``,
``scale_width_and_crop``, ``resize_and_crop``, ``crop``, ``none``; nearest for label
and instance maps, bicubic for photos, then a random horizontal flip). Instance ids
are renumbered ``0..K-1`` per image (at most ``max_instances``); one-hot labels and the
edge map are computed on device.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import ml_collections
import numpy as np
from absl import logging
from PIL import Image

from jaxsr.data.images import ImageError, image_size, list_images, read_image
from jaxsr.data.sources import BUILTIN_EVAL, BUILTIN_TRAIN, builtin_photo
from jaxsr.errors import UserError

RESIZE_OR_CROP = ("scale_width", "scale_width_and_crop", "resize_and_crop", "crop", "none")
_SUFFIXES = ("_gtFine_labelIds", "_gtFine_instanceIds", "_leftImg8bit", "_labelIds", "_instanceIds")
BUILTIN_CLASSES = 8  # colour clusters of the builtin stand-in labels


def label_source_config(kind: str = "builtin", root: str = "", phase: str = "train"):
    """A label-map data block, as recipes write it."""
    return ml_collections.ConfigDict(
        dict(
            kind=kind,  # 'folder' (the official layout under root) | 'builtin' (demo stand-in)
            root=root,  # ROOT holding {phase}_label, {phase}_inst, {phase}_img ('folder')
            phase=phase,  # 'train' | 'test' ...: which folders under root
            max_images=0,  # use only the first N examples; 0 = all
        )
    )


def check_label_source_config(cfg, where: str) -> None:
    if cfg.get("kind") not in ("folder", "builtin"):
        raise UserError(f"{where}.kind={cfg.get('kind')!r} must be 'folder' or 'builtin'.")
    if cfg.kind == "folder" and not cfg.get("root"):
        raise UserError(f"{where}.kind='folder' needs a root: set --config.{where}.root=ROOT.")
    if cfg.kind == "builtin" and cfg.get("root"):
        raise UserError(
            f"{where}.root={cfg.root!r} is set, but {where}.kind is 'builtin', which does not "
            f"read it; add --config.{where}.kind=folder to use it."
        )


def label_key(path: str) -> str:
    """The stem that pairs a label map with its instance map and photo."""
    stem = os.path.splitext(os.path.basename(path))[0]
    for suffix in _SUFFIXES:
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def read_label(path: str, label_nc: int, flag: str = "--config.label_nc") -> np.ndarray:
    """Label ids ``(H, W)`` int32 (``label_nc > 0``) or an RGB label image (``label_nc`` 0);
    ``flag`` is how the calling tool spells the setting in its error."""
    pic = read_image(path)
    if label_nc == 0:
        return pic.rgb_uint8()
    if pic.pixels.shape[-1] != 1:
        raise ImageError(
            f"{path}: a label map must be a single-channel image of class ids (found "
            f"{pic.pixels.shape[-1]} channels); for colour label images set label_nc=0."
        )
    ids = pic.pixels[..., 0].astype(np.int32)
    if ids.max(initial=0) >= label_nc:
        raise ImageError(
            f"{path}: label id {int(ids.max())} is not below label_nc={label_nc}; set "
            f"{flag} to the number of classes of this dataset."
        )
    return ids


def read_instances(path: str) -> np.ndarray:
    pic = read_image(path)
    if pic.pixels.shape[-1] != 1:
        raise ImageError(f"{path}: an instance map must be single-channel (16-bit ids).")
    return pic.pixels[..., 0].astype(np.int32)


@dataclasses.dataclass
class LabelMapSource:
    """Examples ``{'label', 'inst', 'image'}`` (arrays in memory or file paths)."""

    names: list[str]
    labels: list
    insts: list  # or None entries when instances are not used
    images: list  # or None entries at test time
    label_nc: int

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> dict:
        def load(item, reader):
            return item if not isinstance(item, str) else reader(item)

        try:
            ex = {
                "name": self.names[index],
                "label": load(self.labels[index], lambda p: read_label(p, self.label_nc)),
            }
            if self.insts[index] is not None:
                ex["inst"] = load(self.insts[index], read_instances)
            if self.images[index] is not None:
                ex["image"] = load(self.images[index], lambda p: read_image(p).rgb_uint8())
        except ImageError as e:
            raise UserError(str(e)) from e
        return ex


def folder_source(cfg, *, label_nc: int, instances: bool, images: bool) -> LabelMapSource:
    """The official layout under ``cfg.root``, every file checked (module docstring)."""
    root, phase = cfg.root, cfg.phase
    dirs = {k: os.path.join(root, f"{phase}_{k}") for k in ("label", "inst", "img")}
    layout = (
        f"A pix2pixHD dataset has {phase}_label/, {phase}_inst/ and {phase}_img/ under its "
        f"root ({root})."
    )
    try:
        labels = list_images(dirs["label"])
    except ImageError as e:
        raise UserError(f"No label maps: {e} {layout}") from e
    if not labels:
        raise UserError(f"No label maps: {dirs['label']} holds no images. {layout}")

    def partners(kind: str) -> dict[str, str]:
        try:
            return {label_key(p): p for p in list_images(dirs[kind])}
        except ImageError as e:
            raise UserError(f"{e} It should hold one file per label map in {dirs['label']}.") from e

    inst_by = partners("inst") if instances else {}
    img_by = partners("img") if images else {}
    names, insts, imgs = [], [], []
    for path in labels:
        key = label_key(path)
        for kind, by in (("inst", inst_by), ("img", img_by)):
            if (kind == "inst" and instances or kind == "img" and images) and key not in by:
                raise UserError(
                    f"{path} has no partner in {dirs[kind]} (looked for a file named {key}*); "
                    + ("add it or set --config.no_instance=True." if kind == "inst" else "add it.")
                )
        names.append(os.path.basename(path))
        insts.append(inst_by.get(key))
        imgs.append(img_by.get(key))
    max_images = cfg.get("max_images", 0) or len(labels)
    source = LabelMapSource(
        names[:max_images], labels[:max_images], insts[:max_images], imgs[:max_images], label_nc
    )
    _check_files(source)
    return source


def _size(path: str) -> tuple[int, int]:
    try:
        return image_size(path)
    except ImageError as e:
        raise UserError(str(e)) from e


def check_same_size(label: str, label_hw, other: str, other_hw) -> None:
    """Stop unless an instance map or photo has its label map's size: resized apart,
    their edges and regions would no longer line up (training and synthesis alike)."""
    if tuple(other_hw) != tuple(label_hw):
        (h, w), (oh, ow) = label_hw, other_hw
        raise UserError(
            f"{other} is {ow}x{oh} but its label map {label} is {w}x{h}; the label, "
            "instance and photo of an example must have the same size."
        )


def _check_files(source: LabelMapSource) -> None:
    """Read every label map (ids < label_nc) and compare every partner's size."""
    for i, label in enumerate(source.labels):
        try:
            hw = read_label(label, source.label_nc).shape[:2]
        except ImageError as e:
            raise UserError(str(e)) from e
        for other in (source.insts[i], source.images[i]):
            if other is not None:
                check_same_size(label, hw, other, _size(other))


# -- the builtin stand-in -----------------------------------------------------------


ANNOTATION_WIDTH = 128  # the stand-in labels are drawn at this width, like a coarse annotation


def _annotation_view(photo: np.ndarray) -> np.ndarray:
    """The photo box-downscaled to ``ANNOTATION_WIDTH`` and lightly smoothed (float RGB):
    what the stand-in's annotator looks at. Labelling at one width for every photo keeps
    regions about equally coarse whatever the photo's size."""
    from scipy.ndimage import gaussian_filter

    h, w = photo.shape[:2]
    small = (ANNOTATION_WIDTH, max(1, round(h * ANNOTATION_WIDTH / w)))
    img = np.asarray(Image.fromarray(photo).resize(small, Image.Resampling.BOX), np.float32)
    return gaussian_filter(img, sigma=(1, 1, 0))


@functools.lru_cache(maxsize=2)
def builtin_split(split: str) -> tuple[tuple[str, np.ndarray], ...]:
    """``((name, photo), ...)`` of the stand-in's ``train`` or ``eval`` split (decoded
    once per process: the palette and the examples both read it; read-only arrays).

    The builtin training photos are mostly grayscale textures; a model (and the
    class-mean baseline) fitted on them has never seen the colours of the three builtin
    eval photos. So the label-map demo trains on the training photos *and the left
    halves* of the eval photos, and holds out their right halves: label maps and pixels
    never seen in training, from the same kind of scene.
    """
    halves = {n: builtin_photo(n) for n in BUILTIN_EVAL}
    if split == "train":
        out = [(n, builtin_photo(n)) for n in BUILTIN_TRAIN]
        out += [(f"{n}_left", p[:, : p.shape[1] // 2]) for n, p in halves.items()]
    else:
        out = [(f"{n}_right", p[:, p.shape[1] // 2 :]) for n, p in halves.items()]
    for _, photo in out:
        photo.flags.writeable = False
    return tuple(out)


@functools.lru_cache(maxsize=1)
def builtin_palette() -> np.ndarray:
    """``(BUILTIN_CLASSES, 3)`` colour centres: k-means (fixed seed) of the annotation
    views of the stand-in's *training* split only."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    samples = []
    for _, photo in builtin_split("train"):
        px = _annotation_view(photo).reshape(-1, 3)
        samples.append(px[rng.choice(len(px), min(len(px), 4000), replace=False)])
    km = KMeans(BUILTIN_CLASSES, n_init=4, random_state=0).fit(np.concatenate(samples))
    order = np.argsort(km.cluster_centers_.sum(1))  # dark to bright: stable class ids
    return km.cluster_centers_[order].astype(np.float32)


def builtin_label_maps(photo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(label ids, instance ids)`` of a builtin photo, at the photo's size.

    Drawn like a coarse annotation: on the annotation view, each pixel gets the nearest
    palette colour, a 5×5 majority vote removes speckles (real label maps are regions,
    not pixel noise), and the connected regions of a class larger than 1/200 of the image
    become Cityscapes-style instances ``class·1000 + k`` (smaller ones keep the class id,
    like Cityscapes' "stuff"). Both maps are then enlarged (nearest) to the photo's size.
    """
    from scipy.ndimage import label as connected
    from scipy.ndimage import uniform_filter

    palette = builtin_palette()
    px = _annotation_view(photo)
    d = ((px[:, :, None, :] - palette[None, None]) ** 2).sum(-1)
    onehot = np.eye(BUILTIN_CLASSES, dtype=np.float32)[d.argmin(-1)]
    label = uniform_filter(onehot, size=(5, 5, 1), mode="nearest").argmax(-1).astype(np.int32)
    inst = label.copy()
    min_area = label.size // 200
    for c in range(BUILTIN_CLASSES):
        regions, n = connected(label == c)
        sizes = np.bincount(regions.ravel(), minlength=n + 1)
        large = [r for r in np.argsort(-sizes[1:]) + 1 if sizes[r] >= min_area]
        for k, r in enumerate(large):
            inst[regions == r] = c * 1000 + k
    h, w = photo.shape[:2]
    rows = np.arange(h) * label.shape[0] // h
    cols = np.arange(w) * label.shape[1] // w
    return label[rows[:, None], cols], inst[rows[:, None], cols]


@functools.lru_cache(maxsize=2)
def _builtin_examples(split: str) -> tuple:
    names, photos = zip(*builtin_split(split), strict=True)
    maps = [builtin_label_maps(p) for p in photos]
    return names, [m[0] for m in maps], [m[1] for m in maps], photos


def builtin_source(split: str) -> LabelMapSource:
    """The stand-in examples of the builtin photos' ``train`` or ``eval`` split (made
    once per process)."""
    names, labels, insts, photos = _builtin_examples(split)
    return LabelMapSource(list(names), list(labels), list(insts), list(photos), BUILTIN_CLASSES)


def make_label_source(cfg, *, label_nc: int, instances: bool, images: bool = True, split="train"):
    check_label_source_config(cfg, f"data.{split}")
    if cfg.kind == "builtin":
        if label_nc != BUILTIN_CLASSES:
            raise UserError(
                f"The builtin label maps have {BUILTIN_CLASSES} classes; set "
                f"--config.label_nc={BUILTIN_CLASSES} (it is {label_nc})."
            )
        source = builtin_source(split)
        if cfg.get("max_images"):
            n = cfg.max_images
            source = LabelMapSource(
                source.names[:n], source.labels[:n], source.insts[:n], source.images[:n], label_nc
            )
    else:
        source = folder_source(cfg, label_nc=label_nc, instances=instances, images=images)
    if not instances:
        source.insts = [None] * len(source)
    logging.info(
        "pix2pixHD %s data: %s, %d examples.",
        split,
        cfg.root if cfg.kind == "folder" else "builtin photos (colour-cluster stand-in labels)",
        len(source),
    )
    return source


# -- resize / crop / flip -----------------------------------------------------------


def _resize(arr: np.ndarray, size_hw: tuple[int, int], nearest: bool) -> np.ndarray:
    h, w = size_hw
    if arr.shape[:2] == (h, w):
        return arr
    method = Image.NEAREST if nearest else Image.BICUBIC
    if arr.dtype == np.int32:  # PIL mode 'I'
        return np.asarray(Image.fromarray(arr).resize((w, h), method), np.int32)
    return np.asarray(Image.fromarray(arr).resize((w, h), method))


def resize_example(ex: dict, size_hw: tuple[int, int]) -> dict:
    """Every map of ``ex`` at ``size_hw``: ids (2-D) nearest, photos (and RGB label
    images, label_nc 0) bicubic, as the official dataset resizes them."""
    return {k: _resize(v, size_hw, nearest=v.ndim == 2) for k, v in ex.items()}


def target_size(
    h: int, w: int, mode: str, load_size: int, base: int, rounded: bool = False
) -> tuple[int, int]:
    """The size after the resize part of ``resize_or_crop`` (before any crop);
    ``rounded``: then rounded to multiples of ``base`` as ``none`` always is (whole
    images at evaluation and synthesis)."""
    if mode == "resize_and_crop":
        h, w = load_size, load_size
    elif mode.startswith("scale_width"):
        h, w = int(load_size * h / w), load_size
    if mode == "none" or rounded:  # the official __make_power_2: the nearest multiple
        return max(base, int(round(h / base) * base)), max(base, int(round(w / base) * base))
    return h, w


def transform(
    ex: dict,
    rng,
    *,
    mode,
    load_size,
    fine_size,
    base,
    flip,
    max_instances,
    rounded=False,
    expected=None,
):
    """One example resized/cropped/flipped as the official dataset does; instance ids
    renumbered ``0..K-1``. ``expected``: the ``(H, W)`` every training example must
    have (one compiled step)."""
    ex = dict(ex)
    name = ex.pop("name", "an example")
    h, w = ex["label"].shape[:2]
    size = target_size(h, w, mode, load_size, base, rounded)
    out = resize_example(ex, size)
    if "crop" in mode:
        th, tw = out["label"].shape[:2]
        if th < fine_size or tw < fine_size:
            raise UserError(
                f"{name} is {tw}x{th} after resizing, smaller than fine_size {fine_size}."
            )
        y, x = rng.integers(0, th - fine_size + 1), rng.integers(0, tw - fine_size + 1)
        out = {k: v[y : y + fine_size, x : x + fine_size] for k, v in out.items()}
    if flip and rng.random() > 0.5:
        out = {k: v[:, ::-1] for k, v in out.items()}
    if "inst" in out:
        ids, dense = np.unique(out["inst"], return_inverse=True)
        if len(ids) > max_instances:
            raise UserError(
                f"{name} has {len(ids)} instances, more than max_instances={max_instances}; "
                "raise --config.max_instances."
            )
        out["inst"] = dense.reshape(out["inst"].shape).astype(np.int32)
    if expected is not None and out["label"].shape[:2] != tuple(expected):
        got = out["label"].shape[:2]
        raise UserError(
            f"{name} is {got[1]}x{got[0]} after resize_or_crop={mode!r}, but the first "
            f"example is {expected[1]}x{expected[0]}; a training run needs one size: use a "
            "crop mode (scale_width_and_crop, crop) or images of one aspect ratio."
        )
    return {k: np.ascontiguousarray(v) for k, v in out.items()}
