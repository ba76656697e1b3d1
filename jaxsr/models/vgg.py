"""VGG19 feature extractor for perceptual losses (torchvision ``vgg19().features`` layout).

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015. Only the convolutional part is built (20,024,384 parameters
up to ``conv5_4``). Layers are named like the paper (``conv3_4``, ``relu3_4``,
``pool3``), and any of them can be returned, *before* (``convX_Y``) or *after*
(``reluX_Y``) its activation: ESRGAN's perceptual loss reads ``conv5_4`` before the
ReLU (Wang et al. 2018, Sec. 3.3); pix2pixHD reads ``relu1_1 … relu5_1``.

The network stops at the deepest requested layer. ImageNet mean/std normalisation
(torchvision's) is applied inside when ``normalize=True``; inputs are RGB in [0, 1].
Pretrained weights are not downloadable here: ``jaxsr.weights.vgg.load_vgg19_params``
reads the file the user gives (torchvision's ``vgg19-dcbb9e9d.pth`` or a converted
``.npz``).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

# (block, convs per block) of VGG19; torchvision indices follow from this order.
_BLOCKS = ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
WIDTHS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}


def vgg19_layers() -> list[tuple[str, int]]:
    """``[(name, torchvision features index)]`` in order (conv, relu, ..., pool)."""
    out, idx = [], 0
    for b, n in _BLOCKS:
        for c in range(1, n + 1):
            out += [(f"conv{b}_{c}", idx), (f"relu{b}_{c}", idx + 1)]
            idx += 2
        out.append((f"pool{b}", idx))
        idx += 1
    return out


LAYER_INDEX = dict(vgg19_layers())
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """Returns ``{layer: features}`` for the requested ``layers`` (NHWC).

    Attributes:
      layers: names such as ``('conv5_4',)`` or ``('relu1_1', ..., 'relu5_1')``.
      normalize: subtract the ImageNet mean and divide by its std first.
      dtype: compute dtype.
    """

    layers: tuple[str, ...] = ("conv5_4",)
    normalize: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        unknown = [name for name in self.layers if name not in LAYER_INDEX]
        if unknown:
            raise ValueError(f"Unknown VGG19 layers {unknown}; valid: {list(LAYER_INDEX)}.")
        last = max(LAYER_INDEX[name] for name in self.layers)
        x = x.astype(self.dtype)
        if self.normalize:
            x = (x - jnp.asarray(IMAGENET_MEAN, self.dtype)) / jnp.asarray(IMAGENET_STD, self.dtype)
        out = {}
        for name, idx in vgg19_layers():
            if idx > last:
                break
            if name.startswith("conv"):
                block = int(name[4])
                x = nn.Conv(WIDTHS[block], (3, 3), padding=1, dtype=self.dtype, name=name)(x)
            elif name.startswith("relu"):
                x = nn.relu(x)
            else:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
            if name in self.layers:
                out[name] = x.astype(jnp.float32)
        return out


def random_vgg19_params(rng: jax.Array, layers=("conv5_4",)) -> dict:
    """Randomly initialised VGG19 params (tests, and runs that disable pretrained weights)."""
    return VGG19Features(tuple(layers)).init(rng, jnp.zeros((1, 16, 16, 3)))["params"]
