"""Data: image files, sources (builtin / folder / TFDS), grain pipelines."""

from jaxsr.data.images import ImageError, Picture, read_image, write_image
from jaxsr.data.pipeline import eval_examples, train_dataset
from jaxsr.data.sources import BUILTIN_EVAL, BUILTIN_TRAIN, builtin_photo, make_source

__all__ = [
    "BUILTIN_EVAL",
    "BUILTIN_TRAIN",
    "ImageError",
    "Picture",
    "builtin_photo",
    "eval_examples",
    "make_source",
    "read_image",
    "train_dataset",
    "write_image",
]
