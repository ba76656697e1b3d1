"""ESRGAN's VGG-style discriminator (BasicSR ``VGGStyleDiscriminator``).

Wang et al., ESRGAN (ECCVW 2018), Fig. 4 / BasicSR: ten convs with BatchNorm and
LeakyReLU(0.2), halving the resolution five times from 128×128 (six from 256×256),
then Linear(512·4·4 → 100) → LeakyReLU → Linear(100 → 1), a raw logit. The 128 input
model has 14,499,401 parameters (BatchNorm statistics not counted). Other
input sizes run too (the first linear layer adapts) but are not the paper's model.

BatchNorm follows PyTorch (momentum 0.1 ≙ Flax 0.9, eps 1e-5) and runs in train mode
during GAN training, as the official code does; under data parallelism it normalises
with the statistics of the global batch.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxsr.models.layers import Conv, leaky_relu


class VGGStyleDiscriminator(nn.Module):
    """Attributes: ``num_feat`` base width, ``input_size`` 128 or 256, compute ``dtype``."""

    num_feat: int = 64
    input_size: int = 128
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = True):
        if x.shape[1] != self.input_size or x.shape[2] != self.input_size:
            raise ValueError(
                f"VGGStyleDiscriminator expects {self.input_size}x{self.input_size} inputs, "
                f"got {x.shape[1]}x{x.shape[2]}; set the HR patch size to match."
            )
        nf = self.num_feat

        def bn(name):
            return nn.BatchNorm(
                use_running_average=not train,
                momentum=0.9,
                epsilon=1e-5,
                dtype=self.dtype,
                name=name,
            )

        x = leaky_relu(Conv(nf, 3, dtype=self.dtype, name="conv0_0")(x))
        x = leaky_relu(
            bn("bn0_1")(Conv(nf, 4, 2, 1, use_bias=False, dtype=self.dtype, name="conv0_1")(x))
        )
        widths = [nf * 2, nf * 4, nf * 8, nf * 8] + ([nf * 8] if self.input_size == 256 else [])
        for i, width in enumerate(widths, start=1):
            conv = Conv(width, 3, 1, 1, use_bias=False, dtype=self.dtype, name=f"conv{i}_0")
            x = leaky_relu(bn(f"bn{i}_0")(conv(x)))
            conv = Conv(width, 4, 2, 1, use_bias=False, dtype=self.dtype, name=f"conv{i}_1")
            x = leaky_relu(bn(f"bn{i}_1")(conv(x)))
        # PyTorch flattens NCHW; transpose so linear1 sees the same order as official weights.
        x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)
        x = leaky_relu(nn.Dense(100, dtype=self.dtype, name="linear1")(x))
        return nn.Dense(1, dtype=self.dtype, name="linear2")(x).astype(jnp.float32)
