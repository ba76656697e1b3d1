"""Random-access image sources: builtin photos, image folders, TFDS, ArrayRecord.

A source is a sequence of examples ``{'gt': uint8 HxWx3[, 'lq': uint8 hxwx3]}``
(``lq`` only for paired data) that grain can index. Which one a run uses is a config
block (see ``configs/``)::

    kind: 'builtin' | 'folder' | 'tfds' | 'arrayrecord'
    hr_dir / lr_dir: folders (lr_dir optional: paired data, matched by file stem);
        for 'arrayrecord', hr_dir is the folder ``python -m jaxsr.data.prepare`` made
    tfds_name / tfds_split / tfds_data_dir: a prepared TFDS dataset, e.g. div2k/bicubic_x4

Files that cannot be decoded are skipped with one warning each and counted; images
smaller than the training patch are skipped with a warning; an empty result is a
:class:`~jaxsr.errors.UserError`.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
from absl import logging

from jaxsr.data.images import ImageError, list_images, read_image, verify_image
from jaxsr.data.records import RecordSource
from jaxsr.errors import UserError

# scikit-image's sample photographs (shipped in the wheel, no download). The split
# is fixed: the eval photos never appear in training. Grayscale textures (grass,
# gravel, brick, ...) are replicated to RGB; they add texture variety to the demo.
BUILTIN_TRAIN = (
    "astronaut",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "stereo_motorcycle",
    "camera",
    "grass",
    "gravel",
    "brick",
    "coins",
    "clock",
    "moon",
)
BUILTIN_EVAL = ("chelsea", "coffee", "rocket")


def builtin_photo(name: str) -> np.ndarray:
    """One builtin photograph as uint8 RGB ``(H, W, 3)``."""
    import skimage.data

    img = getattr(skimage.data, name)()
    if isinstance(img, tuple):  # stereo_motorcycle -> (left, right, disparity)
        img = img[0]
    img = np.asarray(img)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return np.ascontiguousarray(img[..., :3].astype(np.uint8))


@dataclasses.dataclass
class ImageSource:
    """Examples held in memory (builtin photos, evaluation sets) or read lazily from files.

    ``skipped`` lists ``(file name, reason)`` for the files the scan left out.
    """

    names: list[str]
    hr: list  # np.ndarray (in memory) or str (path)
    lr: list | None = None
    skipped: list = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.names)

    def _load(self, item) -> np.ndarray:
        return item if isinstance(item, np.ndarray) else read_image(item).rgb_uint8()

    def load(self, index: int) -> dict:
        """Example ``index``; raises :class:`ImageError` if its file cannot be decoded."""
        ex = {"gt": self._load(self.hr[index])}
        if self.lr is not None:
            ex["lq"] = self._load(self.lr[index])
        return ex

    def __getitem__(self, index: int) -> dict:
        # Every file was read in full by the scan; one that fails now changed since.
        # Never serve another image in its place: that would score or weight the
        # wrong picture under this one's name.
        try:
            return self.load(index)
        except ImageError as e:
            raise UserError(
                f"{e} It was readable when the dataset was scanned at start, so it changed "
                "since; restore or remove it and run again (a training run resumes)."
            ) from e


class TfdsSource:
    """A prepared TFDS dataset through ``tfds.data_source`` (random access, no TF graph)."""

    def __init__(self, name: str, split: str, data_dir: str | None, hr_key="hr", lr_key="lr"):
        import tensorflow as tf
        import tensorflow_datasets as tfds

        # TFDS reads through TensorFlow: keep TF off the accelerators JAX uses.
        tf.config.set_visible_devices([], "GPU")
        try:
            self._source = tfds.data_source(name, split=split, data_dir=data_dir or None)
        except Exception as e:
            raise UserError(
                f"TFDS dataset {name!r} (split {split!r}) is not prepared in "
                f"{data_dir or 'the default TFDS data_dir'}: build it where it can be downloaded "
                f"(`tfds build {name.split('/')[0]}`) and point "
                "--config.data.*.tfds_data_dir at it "
                f"({type(e).__name__}: {str(e).splitlines()[0][:200]})."
            ) from e
        self._hr_key, self._lr_key = hr_key, lr_key
        self.skipped: list = []
        self.names = [f"{name}:{split}:{i}" for i in range(len(self._source))]

    def __len__(self) -> int:
        return len(self._source)

    def load(self, index: int) -> dict:
        return self[index]

    def __getitem__(self, index: int) -> dict:
        ex = self._source[index]
        out = {"gt": np.asarray(ex[self._hr_key], np.uint8)}
        if self._lr_key and self._lr_key in ex:
            out["lq"] = np.asarray(ex[self._lr_key], np.uint8)
        return out


def scan_files(paths: list[str], min_size: int) -> tuple[list[str], list[tuple[str, str]]]:
    """Read every file through (see ``verify_image``); return the usable paths and the
    ``(file name, reason)`` of the others, each also logged as a warning."""
    keep, skipped = [], []
    for p in paths:
        try:
            h, w = verify_image(p)
        except ImageError as e:
            skipped.append((os.path.basename(p), str(e)))
            logging.warning("Skipping unreadable image: %s", e)
            continue
        if min(h, w) < min_size:
            reason = f"{h}x{w} is smaller than the {min_size}-pixel minimum"
            skipped.append((os.path.basename(p), reason))
            logging.warning("Skipping %s: %s.", p, reason)
            continue
        keep.append(p)
    if skipped:
        logging.warning("Dataset scan: %d usable, %d skipped.", len(keep), len(skipped))
    return keep, skipped


def source_config(
    kind="folder",
    hr_dir="",
    lr_dir="",
    tfds_name="div2k/bicubic_x4",
    tfds_split="train",
    max_images=0,
):
    """A data source config block, as recipes write it."""
    import ml_collections

    return ml_collections.ConfigDict(
        dict(
            kind=kind,  # 'builtin' | 'folder' | 'tfds' | 'arrayrecord'
            hr_dir=hr_dir,  # folder of HR images ('folder') or prepared shards ('arrayrecord')
            lr_dir=lr_dir,  # optional folder of matching LR images; empty = bicubic on device
            tfds_name=tfds_name,  # prepared TFDS dataset ('tfds'), e.g. div2k/bicubic_x4
            tfds_split=tfds_split,  # its split
            tfds_data_dir="",  # TFDS data_dir; empty = TFDS default
            max_images=max_images,  # use only the first N images; 0 = all
        )
    )


def make_source(cfg, *, min_hr_size: int = 0, builtin_split: str = "train"):
    """Build the source described by a data config block.

    Args:
      cfg: ConfigDict with ``kind`` and the fields of that kind (module docstring).
      min_hr_size: smallest usable HR side (the training patch); smaller images are
        skipped with a warning.
      builtin_split: which fixed split of the builtin photos ``kind='builtin'`` means.
    """
    kind = cfg.kind
    if kind == "builtin":
        names = list(BUILTIN_TRAIN if builtin_split == "train" else BUILTIN_EVAL)
        imgs = [builtin_photo(n) for n in names]
        keep = [i for i, im in enumerate(imgs) if min(im.shape[:2]) >= min_hr_size]
        small = [(n, "smaller than the minimum size") for i, n in enumerate(names) if i not in keep]
        source = ImageSource([names[i] for i in keep], [imgs[i] for i in keep], skipped=small)
    elif kind == "folder":
        if not cfg.hr_dir:
            raise UserError(
                "data kind 'folder' needs hr_dir: set --config.data.<split>.hr_dir=PATH."
            )
        try:
            hr_paths = list_images(cfg.hr_dir)
        except ImageError as e:
            raise UserError(f"Dataset folder not found: {e} Check the hr_dir setting.") from e
        hr_paths, skipped = scan_files(hr_paths, min_hr_size)
        lr_paths = None
        if cfg.get("lr_dir"):
            partners, missing = lr_partners(hr_paths, cfg.lr_dir)
            pairs = list(zip(hr_paths, partners, strict=True))
            if missing:
                logging.warning(
                    "%d HR images have no LR partner in %s (e.g. %s); skipped.",
                    len(missing),
                    cfg.lr_dir,
                    missing[0],
                )
                skipped += [(m, f"no LR partner in {cfg.lr_dir}") for m in missing]
            pairs = [(h, lr) for h, lr in pairs if lr is not None]
            lr_ok, lr_skipped = scan_files([lr for _, lr in pairs], 1)
            lr_ok = set(lr_ok)
            skipped += [(f"{name} (LR)", reason) for name, reason in lr_skipped]
            pairs = [(h, lr) for h, lr in pairs if lr in lr_ok]
            hr_paths, lr_paths = [h for h, _ in pairs], [lr for _, lr in pairs]
        names = [os.path.basename(p) for p in hr_paths]
        source = ImageSource(names, hr_paths, lr_paths, skipped=skipped)
    elif kind == "tfds":
        source = TfdsSource(cfg.tfds_name, cfg.tfds_split, cfg.get("tfds_data_dir"))
    elif kind == "arrayrecord":
        if not cfg.hr_dir:
            raise UserError(
                "data kind 'arrayrecord' needs hr_dir, the prepared folder: set "
                "--config.data.<split>.hr_dir=PATH (made by python -m jaxsr.data.prepare)."
            )
        source = RecordSource(cfg.hr_dir, min_size=min_hr_size)
        for name, reason in source.skipped:
            logging.warning("Left out %s: %s.", name, reason)
    else:
        raise UserError(f"Unknown data kind {kind!r}; choose one of {sorted(KIND_FIELDS)}.")
    if len(source) == 0:
        where = cfg.get("hr_dir") or cfg.get("tfds_name") or kind
        raise UserError(
            f"The dataset {where!r} has no usable images (need decodable images of at least "
            f"{min_hr_size}x{min_hr_size} pixels); check the path or lower the patch size."
        )
    max_images = cfg.get("max_images", 0)
    if max_images and len(source) > max_images and isinstance(source, ImageSource):
        lr = source.lr[:max_images] if source.lr is not None else None
        source = ImageSource(
            source.names[:max_images], source.hr[:max_images], lr, skipped=source.skipped
        )
    return source


# The fields each data kind reads; a field of another kind set away from its default
# would be ignored without a word (a user pointing the builtin demo at a folder).
KIND_FIELDS = {
    "builtin": {"kind", "max_images"},
    "folder": {"kind", "hr_dir", "lr_dir", "max_images"},
    "tfds": {"kind", "tfds_name", "tfds_split", "tfds_data_dir", "max_images"},
    "arrayrecord": {"kind", "hr_dir"},
}


def check_source_config(cfg, where: str) -> None:
    """Stop on a data block whose kind is unknown or that sets a field its kind does
    not read; ``where`` is its config path, e.g. ``data.train``."""
    kind = cfg.get("kind")
    if kind not in KIND_FIELDS:
        raise UserError(
            f"{where}.kind={kind!r} is not a data kind; choose one of {sorted(KIND_FIELDS)}."
        )
    defaults = source_config().to_dict()
    for field, value in cfg.items():
        if field in KIND_FIELDS[kind] or value == defaults.get(field):
            continue
        readers = [k for k, fields in KIND_FIELDS.items() if field in fields]
        fix = f"--config.{where}.kind={readers[0]}" if readers else f"remove {field}"
        raise UserError(
            f"{where}.{field}={value!r} is set, but {where}.kind is {kind!r}, which does not "
            f"read it; add {fix} to use it, or drop the override."
        )


def describe(source, cfg) -> str:
    """``folder /data/HR: 800 images (2 skipped)`` for the start-of-run log."""
    where = {
        "builtin": "builtin photos",
        "folder": f"folder {cfg.get('hr_dir')}",
        "arrayrecord": f"ArrayRecord {cfg.get('hr_dir')}",
    }.get(cfg.kind, f"TFDS {cfg.get('tfds_name')}:{cfg.get('tfds_split')}")
    if cfg.kind == "folder" and cfg.get("lr_dir"):
        where += f" (paired with {cfg.lr_dir})"
    skipped = getattr(source, "skipped", [])
    return f"{where}: {len(source)} images" + (f" ({len(skipped)} skipped)" if skipped else "")


def lr_partners(hr_paths: list[str], lr_dir: str) -> tuple[list[str | None], list[str]]:
    """The LR file of each HR path in ``lr_dir`` (matched by stem; ``None`` if none) and
    the names of the HR files without one."""
    try:
        by_stem = {_stem(p): p for p in list_images(lr_dir)}
    except ImageError as e:
        raise UserError(f"LR folder not found: {e} Check the lr_dir setting.") from e
    partners = [by_stem.get(_stem(h)) for h in hr_paths]
    missing = [os.path.basename(h) for h, lr in zip(hr_paths, partners, strict=True) if lr is None]
    return partners, missing


def _stem(path: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    # DIV2K names LR files 0001x4.png for HR 0001.png.
    for suffix in ("x2", "x3", "x4", "x8"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem
