"""pix2pixHD: semantic label maps to photo-realistic images, coarse to fine.

Wang, Liu, Zhu, Tao, Kautz, Catanzaro, "High-Resolution Image Synthesis and Semantic
Manipulation with Conditional GANs", CVPR 2018; official code NVIDIA/pix2pixHD
``models/networks.py`` (spec §4.1–4.2).

* :class:`GlobalGenerator` (G1): ``c7s1-64, d128 … d1024, 9×R1024, u512 … u64, c7s1-3``
  with tanh; InstanceNorm without affine parameters everywhere (instance statistics at
  test time too), reflection padding for the 7×7 and residual convs. 512p model with
  the 36-channel Cityscapes input: 182,546,755 parameters.
* :class:`LocalEnhancer` (G1 + G2): the global generator without its output layer runs
  on the ×2 average-pooled input; each enhancer adds its front-end features at its
  resolution and refines (element-wise sum, 3 residual blocks, ×2 up). 1024p model
  (``ngf 32``): 182,857,059 parameters.
* :class:`MultiscaleDiscriminator`: ``num_D`` PatchGANs (kw 4, pad 2, InstanceNorm,
  LeakyReLU 0.2) on an AvgPool(3, 2, 1, count_include_pad=False) pyramid, each
  returning all five layer outputs (feature matching reads the first four). Output
  index 0 is the full-resolution one, computed by the submodule named
  ``scale{num_D-1}`` as in the official code. 2,801,601 parameters per scale with the
  39-channel input.
* :class:`Encoder` (E): the instance feature encoder, ``c7s1-16, d32 … d256, u128 …
  u16, c7s1-3`` + tanh, then each feature averaged inside its instance. 3-channel
  image input: 788,803 parameters.

Parameters are named after what they are (``conv_in``, ``down_0``, ``res_3``,
``up_1``, ``conv_out``; ``model1_1``/``model1_2`` for the enhancer, ``scale{i}/layer{j}``
for D); ``jaxsr.convert`` maps the official Sequential indices onto them. Convs are
initialised N(0, 0.02) with PyTorch's default bias (the official ``weights_init``).
Transposed convs use the sub-pixel form (``jaxsr.models.layers.ConvTranspose``).
``dtype`` sets the compute precision (InstanceNorm statistics stay float32) and
``remat`` recomputes each residual block / discriminator scale in the backward pass.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models.layers import Conv, ConvTranspose, leaky_relu
from jaxsr.ops.labels import count_instances, dense_instance_ids, instance_average

WEIGHT_INIT = nn.initializers.normal(0.02)  # the official weights_init for convs


def instance_norm(x, eps: float = 1e-5):
    """``nn.InstanceNorm2d(affine=False)``: per image and channel over H, W (biased var)."""
    xf = x.astype(jnp.float32)
    mean = xf.mean(axis=(1, 2), keepdims=True)
    var = jnp.square(xf - mean).mean(axis=(1, 2), keepdims=True)
    return ((xf - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)


def reflect_pad(x, p: int):
    return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")


def downsample(x):
    """``nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)``."""
    window, strides = (1, 3, 3, 1), (1, 2, 2, 1)
    pad = ((0, 0), (1, 1), (1, 1), (0, 0))
    sums = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, pad)
    ones = jnp.ones((1, *x.shape[1:3], 1), x.dtype)
    counts = jax.lax.reduce_window(ones, 0.0, jax.lax.add, window, strides, pad)
    return sums / counts


def _conv(features: int, kernel: int, dtype, name: str, *, strides: int = 1, padding: int = 0):
    return Conv(
        features,
        kernel,
        strides=strides,
        padding=padding,
        kernel_init=WEIGHT_INIT,
        dtype=dtype,
        name=name,
    )


def _c7s1(x, features: int, dtype, name: str, *, last: bool = False):
    """Reflect-pad 3, 7×7 conv, then IN + ReLU (or tanh for an output layer)."""
    y = _conv(features, 7, dtype, name)(reflect_pad(x, 3))
    return jnp.tanh(y) if last else nn.relu(instance_norm(y))


def _down(x, features: int, dtype, name: str):
    """``dk``: 3×3 stride-2 conv (zero pad 1) + IN + ReLU."""
    return nn.relu(instance_norm(_conv(features, 3, dtype, name, strides=2, padding=1)(x)))


def _up(x, features: int, dtype, name: str):
    """``uk``: ConvTranspose(3, s2, p1, output_padding 1) + IN + ReLU."""
    y = ConvTranspose(features, use_bias=True, kernel_init=WEIGHT_INIT, dtype=dtype, name=name)(x)
    return nn.relu(instance_norm(y))


class ResnetBlock(nn.Module):
    """``x + [reflpad 1, conv3×3, IN, ReLU, reflpad 1, conv3×3, IN](x)`` (no dropout)."""

    dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        y = _conv(self.dim, 3, self.dtype, "conv1")(reflect_pad(x, 1))
        y = nn.relu(instance_norm(y))
        y = instance_norm(_conv(self.dim, 3, self.dtype, "conv2")(reflect_pad(y, 1)))
        return x + y


def _res_blocks(x, dim: int, n: int, dtype, remat: bool, prefix: str = "res"):
    block = nn.remat(ResnetBlock) if remat else ResnetBlock
    for j in range(n):
        x = block(dim, dtype, name=f"{prefix}_{j}")(x)
    return x


def _encoder_decoder(x, *, ngf, n_downsampling, n_blocks, output_nc, last, dtype, remat):
    """The G1 / E body, built inside the calling module (parameters are its own)."""
    y = _c7s1(x.astype(dtype), ngf, dtype, "conv_in")
    for i in range(n_downsampling):
        y = _down(y, ngf * 2 ** (i + 1), dtype, f"down_{i}")
    y = _res_blocks(y, ngf * 2**n_downsampling, n_blocks, dtype, remat)
    for i in range(n_downsampling):
        y = _up(y, ngf * 2 ** (n_downsampling - i - 1), dtype, f"up_{i}")
    if last:
        y = _c7s1(y, output_nc, dtype, "conv_out", last=True).astype(jnp.float32)
    return y


class GlobalGenerator(nn.Module):
    """G1. Input: the official encoding (one-hot labels + instance edges [+ features]),
    NHWC with H, W multiples of ``2**n_downsampling``; output: RGB in [-1, 1] (tanh).

    Attributes:
      output_nc: output channels (3).
      ngf: width of the first layer (64 for 512p).
      n_downsampling: stride-2 stages (4).
      n_blocks: residual blocks at the bottom (9).
      last: keep the output layer (``False`` inside :class:`LocalEnhancer`, where the
        official code removes the last three layers and returns ``ngf`` features).
    """

    output_nc: int = 3
    ngf: int = 64
    n_downsampling: int = 4
    n_blocks: int = 9
    last: bool = True
    dtype: Any = jnp.float32
    remat: bool = False

    @property
    def size_multiple(self) -> int:
        return 2**self.n_downsampling

    @nn.compact
    def __call__(self, x):
        return _encoder_decoder(
            x,
            ngf=self.ngf,
            n_downsampling=self.n_downsampling,
            n_blocks=self.n_blocks,
            output_nc=self.output_nc,
            last=self.last,
            dtype=self.dtype,
            remat=self.remat,
        )


class LocalEnhancer(nn.Module):
    """G1 + G2 (``--netG local``). Enhancer ``n`` (1 = coarsest when there are several)
    has width ``ngf·2**(N-n)``; the last one (``model{N}_*``) works at full resolution
    and ends with the output layer. H, W must be multiples of
    ``2**(n_downsample_global + n_local_enhancers)``.

    Attributes:
      ngf: width of the enhancers (32 for 1024p; the global part uses ``ngf·2**N``);
        ``output_nc``, ``n_downsample_global`` and ``n_blocks_global`` are as in
        :class:`GlobalGenerator`.
      n_local_enhancers: number of enhancers N (1).
      n_blocks_local: residual blocks per enhancer (3).
    """

    output_nc: int = 3
    ngf: int = 32
    n_downsample_global: int = 4
    n_blocks_global: int = 9
    n_local_enhancers: int = 1
    n_blocks_local: int = 3
    dtype: Any = jnp.float32
    remat: bool = False

    @property
    def size_multiple(self) -> int:
        return 2 ** (self.n_downsample_global + self.n_local_enhancers)

    @nn.compact
    def __call__(self, x):
        n_local = self.n_local_enhancers
        pyramid = [x]
        for _ in range(n_local):
            pyramid.append(downsample(pyramid[-1]))
        out = GlobalGenerator(
            self.output_nc,
            self.ngf * 2**n_local,
            self.n_downsample_global,
            self.n_blocks_global,
            last=False,
            dtype=self.dtype,
            remat=self.remat,
            name="global",
        )(pyramid[-1])
        for n in range(1, n_local + 1):
            width = self.ngf * 2 ** (n_local - n)
            front = _EnhancerFront(width, self.dtype, name=f"model{n}_1")(pyramid[n_local - n])
            out = _EnhancerBack(
                width,
                self.n_blocks_local,
                self.output_nc if n == n_local else 0,
                self.dtype,
                self.remat,
                name=f"model{n}_2",
            )(front + out)
        return out


class _EnhancerFront(nn.Module):
    """``model{n}_1``: ``c7s1-ngf, d(2·ngf)``."""

    ngf: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        return _down(
            _c7s1(x.astype(self.dtype), self.ngf, self.dtype, "conv_in"),
            2 * self.ngf,
            self.dtype,
            "down",
        )


class _EnhancerBack(nn.Module):
    """``model{n}_2``: residual blocks at ``2·ngf``, ``u(ngf)``, and the output layer
    when ``output_nc`` (the last enhancer)."""

    ngf: int
    n_blocks: int
    output_nc: int
    dtype: Any = jnp.float32
    remat: bool = False

    @nn.compact
    def __call__(self, x):
        y = _res_blocks(x, 2 * self.ngf, self.n_blocks, self.dtype, self.remat)
        y = _up(y, self.ngf, self.dtype, "up")
        if self.output_nc:
            y = _c7s1(y, self.output_nc, self.dtype, "conv_out", last=True).astype(jnp.float32)
        return y


class Encoder(nn.Module):
    """E: image ``(B, H, W, 3)`` in [-1, 1] and instance map ``(B, H, W)`` (any integer
    ids: Cityscapes' or already dense) -> features ``(B, H, W, output_nc)``, constant
    inside each instance. ``max_instances`` bounds the instances per image (static
    shapes); eager calls check it, the training pipeline checks it on the host.

    Attributes:
      output_nc: feature channels (``feat_num`` 3).
      ngf: first width (``nef`` 16).
      n_downsampling: 4.
      max_instances: instance ids per image the pooling has room for.
    """

    output_nc: int = 3
    ngf: int = 16
    n_downsampling: int = 4
    max_instances: int = 256
    dtype: Any = jnp.float32
    remat: bool = False

    @nn.compact
    def __call__(self, image, inst):
        if not isinstance(inst, jax.core.Tracer) and count_instances(inst) > self.max_instances:
            raise ValueError(
                f"An instance map has {count_instances(inst)} distinct ids, more than "
                f"max_instances={self.max_instances}; raise max_instances."
            )
        feat = _encoder_decoder(
            image,
            ngf=self.ngf,
            n_downsampling=self.n_downsampling,
            n_blocks=0,
            output_nc=self.output_nc,
            last=True,
            dtype=self.dtype,
            remat=self.remat,
        )
        return instance_average(
            feat, dense_instance_ids(inst, self.max_instances), self.max_instances
        )


class NLayerDiscriminator(nn.Module):
    """PatchGAN with ``n_layers`` stride-2/1 convs (kw 4, pad 2, channels capped at 512),
    returning every layer's output (``layer0 … layer{n_layers+1}``; the last is the
    1-channel patch score, no sigmoid for LSGAN)."""

    ndf: int = 64
    n_layers: int = 3
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        conv = functools.partial(_conv, kernel=4, dtype=self.dtype, padding=2)
        outs = [leaky_relu(conv(self.ndf, name="layer0", strides=2)(x.astype(self.dtype)))]
        nf = self.ndf
        for n in range(1, self.n_layers + 1):
            nf = min(nf * 2, 512)
            stride = 2 if n < self.n_layers else 1
            y = conv(nf, name=f"layer{n}", strides=stride)(outs[-1])
            outs.append(leaky_relu(instance_norm(y)))
        outs.append(conv(1, name=f"layer{self.n_layers + 1}")(outs[-1]))
        return [o.astype(jnp.float32) for o in outs]


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` :class:`NLayerDiscriminator` on the input and its ×2, ×4 … average-pooled
    versions. Returns ``[[layer outputs] per scale]``, index 0 = full resolution
    (submodule ``scale{num_D-1}``, as the official naming).

    Attributes:
      num_D: scales (2 = the official default / 512p, 3 = 1024p and the paper).
      ndf / n_layers: as :class:`NLayerDiscriminator` (64, 3).
    """

    num_D: int = 2  # noqa: N815 (the official option name)
    ndf: int = 64
    n_layers: int = 3
    dtype: Any = jnp.float32
    remat: bool = False

    @nn.compact
    def __call__(self, x):
        single = nn.remat(NLayerDiscriminator) if self.remat else NLayerDiscriminator
        result = []
        for i in range(self.num_D):
            d = single(self.ndf, self.n_layers, self.dtype, name=f"scale{self.num_D - 1 - i}")
            result.append(d(x))
            if i != self.num_D - 1:
                x = downsample(x)
        return result
