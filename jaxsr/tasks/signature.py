"""What an exported graph of a network takes and gives (``python -m jaxsr.export``).

A task describes its network as a graph outside JAX sees it: named inputs (images, or
integer maps such as pix2pixHD's label ids), the size multiple their height and width
need, and one function from those inputs (NHWC, as jaxsr's models) to the output image
in [0, 1]. The encodings a runtime should not have to know (pix2pixHD's one-hot labels
and instance edges, the ``(x + 1) / 2`` of a tanh output) are inside that function, so
the exported graph is the whole model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax.numpy as jnp

from jaxsr.ops.padding import at_any_size


@dataclasses.dataclass(frozen=True)
class GraphInput:
    """One input of the graph.

    Attributes:
      name: its name in the exported file (``input`` for the image, as Real-ESRGAN's
        ONNX export names it).
      channels: channels of a float image; 0 for an ``(N, H, W)`` int32 map of ids.
      size_factor: its height and width relative to the first input's (SFTGAN's prior
        is at the output size: the scale).
      ids: for an id map, the number of distinct ids the export check draws.
    """

    name: str
    channels: int = 3
    size_factor: int = 1
    ids: int = 0


@dataclasses.dataclass(frozen=True)
class GraphSignature:
    """A network as a graph: ``fn(*inputs)`` (NHWC arrays) -> NHWC output in [0, 1].

    Attributes:
      inputs: the graph's inputs, in order; the first sets the size.
      fn: the network's function on sides that are multiples of ``multiple`` (the
        variables are closed over: weights are constants of the graph).
      scale: the output's size relative to the first input's.
      multiple: what the network needs its sides to be multiples of; the exported graph
        takes any size (:meth:`any_size`).
      min_side: the smallest height and width the graph takes (0: ``multiple``).
    """

    inputs: tuple[GraphInput, ...]
    fn: Callable
    scale: int
    multiple: int = 1
    min_side: int = 0

    @property
    def smallest(self) -> int:
        return max(self.min_side, self.multiple, 1)

    @property
    def rule(self) -> str:
        """The sizes the graph takes, in one phrase (the report, the file's metadata)."""
        if self.multiple == 1 and self.smallest == 1:
            return "any height and width"
        text = f"any height and width from {self.smallest}"
        if self.multiple > 1:
            text += f" (reflect-padded to multiples of {self.multiple} inside the graph)"
        return text

    def any_size(self) -> Callable:
        """``fn`` for inputs of any size from :attr:`smallest`: padded to the multiple
        and cropped back (:func:`jaxsr.ops.padding.at_any_size`), as exported."""
        factors = tuple(port.size_factor for port in self.inputs)
        return at_any_size(self.fn, self.multiple, self.scale, factors)


def image_graph(module, variables, *, multiple: int = 1, min_side: int = 0) -> GraphSignature:
    """The graph of an image-to-image network ``module.apply(variables, x)``: one image
    in, one image out, clamped to [0, 1] as ``jaxsr.upscale`` writes it."""

    def fn(x):
        return jnp.clip(module.apply(variables, x), 0.0, 1.0)

    return GraphSignature((GraphInput("input"),), fn, module.scale, multiple, min_side=min_side)
