"""Image operations shared by data, evaluation and models."""

from jaxsr.ops.color import rgb_to_y, to_uint8
from jaxsr.ops.imresize import imresize, imresize_uint8
from jaxsr.ops.pixel_shuffle import pixel_shuffle, pixel_unshuffle

__all__ = ["imresize", "imresize_uint8", "pixel_shuffle", "pixel_unshuffle", "rgb_to_y", "to_uint8"]
