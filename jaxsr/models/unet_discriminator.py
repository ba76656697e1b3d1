"""Real-ESRGAN's U-Net discriminator with spectral normalisation.

Wang et al., "Real-ESRGAN", ICCVW 2021, Sec. 3.3 / Fig. 6; BasicSR
``UNetDiscriminatorSN``: a per-pixel realness map from a U-Net (three stride-2 4×4
convs down, three bilinear ×2 + 3×3 convs up with additive skips, two more convs, one
output channel), every conv but the first and the last spectrally normalised, LeakyReLU
0.2 throughout. With ``num_feat=64`` it has 4,376,897 trainable parameters, as the
released ``RealESRGAN_x4plus_netD.pth``.

Spectral normalisation as PyTorch's ``torch.nn.utils.spectral_norm`` (Miyato et al.,
ICLR 2018): the kernel is divided by σ = uᵀ W v, ``W`` the kernel as an (out, in·k·k)
matrix; ``u`` and ``v`` live in the ``spectral`` collection. In training
(``update=True``, ``spectral`` mutable) one power iteration ``v = Wᵀu/‖Wᵀu‖,
u = Wv/‖Wv‖`` runs per call and the new ``u``, ``v`` are kept; in evaluation the stored
ones are used as they are. No gradient flows through ``u`` and ``v``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsr.models.layers import Conv, leaky_relu, torch_default_init, upsample_bilinear2x

EPS = 1e-12  # PyTorch's spectral_norm eps


def _normalize(x):
    return x / jnp.maximum(jnp.linalg.norm(x), EPS)


class SpectralNormConv(nn.Module):
    """``spectral_norm(nn.Conv2d(C, features, k, stride, padding, bias=False))``.

    Parameters: ``kernel`` (PyTorch's ``weight_orig`` as HWIO); state: ``spectral/u``
    (``features``) and ``spectral/v`` (``C·k·k``, PyTorch's (in, kh, kw) order)."""

    features: int
    kernel_size: int = 3
    strides: int = 1
    padding: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, update: bool = False):
        k, cin = self.kernel_size, x.shape[-1]
        kernel = self.param(
            "kernel", torch_default_init(cin * k * k), (k, k, cin, self.features), jnp.float32
        )
        # PyTorch initialises u and v from N(0, 1), normalised.
        u = self.variable(
            "spectral",
            "u",
            lambda: _normalize(jax.random.normal(self.make_rng("params"), (self.features,))),
        )
        v = self.variable(
            "spectral",
            "v",
            lambda: _normalize(jax.random.normal(self.make_rng("params"), (cin * k * k,))),
        )
        w = kernel.transpose(3, 2, 0, 1).reshape(self.features, -1)  # (out, in·kh·kw)
        u_vec, v_vec = u.value, v.value
        if update and not self.is_initializing():
            w_ = jax.lax.stop_gradient(w)
            v_vec = _normalize(w_.T @ u_vec)
            u_vec = _normalize(w_ @ v_vec)
            u.value, v.value = u_vec, v_vec
        sigma = jnp.dot(jax.lax.stop_gradient(u_vec), w @ jax.lax.stop_gradient(v_vec))
        y = jax.lax.conv_general_dilated(
            x.astype(self.dtype),
            (kernel / sigma).astype(self.dtype),
            (self.strides, self.strides),
            [(self.padding, self.padding)] * 2,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return y


class UNetDiscriminatorSN(nn.Module):
    """Input ``(N, H, W, num_in_ch)`` (H, W multiples of 8) → ``(N, H, W, 1)`` logits.

    Attributes:
      num_in_ch: image channels.
      num_feat: base width.
      skip_connection: the additive skips of the up path.
      dtype: compute dtype (parameters stay float32).
    """

    num_in_ch: int = 3
    num_feat: int = 64
    skip_connection: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = True):
        if x.shape[1] % 8 or x.shape[2] % 8:
            raise ValueError(
                f"UNetDiscriminatorSN needs sides that are multiples of 8, got "
                f"{x.shape[1]}x{x.shape[2]}."
            )
        nf = self.num_feat

        def sn(name, features, k=3, stride=1, padding=1):
            conv = SpectralNormConv(features, k, stride, padding, self.dtype, name=name)
            return lambda h: leaky_relu(conv(h, update=train))

        x0 = leaky_relu(Conv(nf, dtype=self.dtype, name="conv0")(x.astype(self.dtype)))
        x1 = sn("conv1", nf * 2, 4, 2)(x0)
        x2 = sn("conv2", nf * 4, 4, 2)(x1)
        x3 = sn("conv3", nf * 8, 4, 2)(x2)
        x4 = sn("conv4", nf * 4)(upsample_bilinear2x(x3))
        x4 = x4 + x2 if self.skip_connection else x4
        x5 = sn("conv5", nf * 2)(upsample_bilinear2x(x4))
        x5 = x5 + x1 if self.skip_connection else x5
        x6 = sn("conv6", nf)(upsample_bilinear2x(x5))
        x6 = x6 + x0 if self.skip_connection else x6
        out = sn("conv7", nf)(x6)
        out = sn("conv8", nf)(out)
        return Conv(1, dtype=self.dtype, name="conv9")(out).astype(jnp.float32)
