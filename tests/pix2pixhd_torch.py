"""PyTorch pix2pixHD networks written from spec §4.1/4.2 (NVIDIA/pix2pixHD networks.py
layout: nn.Sequential with the official indices, so their state dicts carry the
official key names). Test-only reference for the parity tests; also used by the
benchmark's PyTorch column."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _norm(c):
    return nn.InstanceNorm2d(c, affine=False)


class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            _norm(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            _norm(dim),
        )

    def forward(self, x):
        return x + self.conv_block(x)


def _body(input_nc, output_nc, ngf, n_down, n_blocks, last=True):
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), _norm(ngf), nn.ReLU(True)]
    for i in range(n_down):
        m = 2**i
        layers += [
            nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1),
            _norm(ngf * m * 2),
            nn.ReLU(True),
        ]
    m = 2**n_down
    layers += [ResnetBlock(ngf * m) for _ in range(n_blocks)]
    for i in range(n_down):
        m = 2 ** (n_down - i)
        layers += [
            nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1),
            _norm(ngf * m // 2),
            nn.ReLU(True),
        ]
    if last:
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def _pool():
    return nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)


class GlobalGenerator(nn.Module):
    def __init__(self, input_nc, output_nc=3, ngf=64, n_down=4, n_blocks=9):
        super().__init__()
        self.model = _body(input_nc, output_nc, ngf, n_down, n_blocks)

    def forward(self, x):
        return self.model(x)


class LocalEnhancer(nn.Module):
    def __init__(
        self, input_nc, output_nc=3, ngf=32, n_down=4, n_blocks=9, n_local=1, n_blocks_local=3
    ):
        super().__init__()
        self.n_local = n_local
        self.model = _body(input_nc, output_nc, ngf * 2**n_local, n_down, n_blocks, last=False)
        for n in range(1, n_local + 1):
            w = ngf * 2 ** (n_local - n)
            front = [
                nn.ReflectionPad2d(3),
                nn.Conv2d(input_nc, w, 7),
                _norm(w),
                nn.ReLU(True),
                nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
                _norm(2 * w),
                nn.ReLU(True),
            ]
            back = [ResnetBlock(2 * w) for _ in range(n_blocks_local)]
            back += [
                nn.ConvTranspose2d(2 * w, w, 3, stride=2, padding=1, output_padding=1),
                _norm(w),
                nn.ReLU(True),
            ]
            if n == n_local:
                back += [nn.ReflectionPad2d(3), nn.Conv2d(w, output_nc, 7), nn.Tanh()]
            setattr(self, f"model{n}_1", nn.Sequential(*front))
            setattr(self, f"model{n}_2", nn.Sequential(*back))
        self.downsample = _pool()

    def forward(self, x):
        pyramid = [x]
        for _ in range(self.n_local):
            pyramid.append(self.downsample(pyramid[-1]))
        out = self.model(pyramid[-1])
        for n in range(1, self.n_local + 1):
            front = getattr(self, f"model{n}_1")
            back = getattr(self, f"model{n}_2")
            out = back(front(pyramid[self.n_local - n]) + out)
        return out


class Encoder(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, ngf=16, n_down=4):
        super().__init__()
        self.model = _body(input_nc, output_nc, ngf, n_down, 0)

    def forward(self, image, inst):
        """The official loop: per instance id, per image, per channel, the mean."""
        out = self.model(image)
        mean = out.clone()
        for i in np.unique(inst.numpy().astype(int)):
            for b in range(image.shape[0]):
                idx = (inst[b : b + 1] == int(i)).nonzero()
                for j in range(out.shape[1]):
                    sel = out[idx[:, 0] + b, idx[:, 1] + j, idx[:, 2], idx[:, 3]]
                    mean[idx[:, 0] + b, idx[:, 1] + j, idx[:, 2], idx[:, 3]] = sel.mean()
        return mean


def _nlayer(input_nc, ndf, n_layers):
    """The five per-layer Sequentials of an NLayerDiscriminator (getIntermFeat=True)."""
    kw, pad = 4, 2
    seq = [[nn.Conv2d(input_nc, ndf, kw, 2, pad), nn.LeakyReLU(0.2, True)]]
    nf = ndf
    for _n in range(1, n_layers):
        prev, nf = nf, min(nf * 2, 512)
        seq += [[nn.Conv2d(prev, nf, kw, 2, pad), _norm(nf), nn.LeakyReLU(0.2, True)]]
    prev, nf = nf, min(nf * 2, 512)
    seq += [[nn.Conv2d(prev, nf, kw, 1, pad), _norm(nf), nn.LeakyReLU(0.2, True)]]
    seq += [[nn.Conv2d(nf, 1, kw, 1, pad)]]
    return seq


class MultiscaleDiscriminator(nn.Module):
    """``feature_keys=True``: ``scale{i}_layer{j}``; else one Sequential ``layer{i}``
    per scale (the ``--no_ganFeat_loss`` key scheme; forward still returns all layers)."""

    def __init__(self, input_nc, ndf=64, n_layers=3, num_D=2, feature_keys=True):  # noqa: N803
        super().__init__()
        self.num_D, self.n_layers, self.feature_keys = num_D, n_layers, feature_keys
        for i in range(num_D):
            seq = _nlayer(input_nc, ndf, n_layers)
            if feature_keys:
                for j, layers in enumerate(seq):
                    setattr(self, f"scale{i}_layer{j}", nn.Sequential(*layers))
            else:
                setattr(self, f"layer{i}", nn.Sequential(*[m for s in seq for m in s]))
        self.downsample = _pool()

    def _single(self, i, x):
        if self.feature_keys:
            outs = [x]
            for j in range(self.n_layers + 2):
                outs.append(getattr(self, f"scale{i}_layer{j}")(outs[-1]))
            return outs[1:]
        outs, h = [], x
        for m in getattr(self, f"layer{i}"):
            h = m(h)
            if isinstance(m, nn.LeakyReLU) or m is getattr(self, f"layer{i}")[-1]:
                outs.append(h)
        return outs

    def forward(self, x):
        result = []
        for i in range(self.num_D):
            result.append(self._single(self.num_D - 1 - i, x))
            if i != self.num_D - 1:
                x = self.downsample(x)
        return result


def init_normal(module: nn.Module, seed: int = 0) -> nn.Module:
    """The official weights_init (conv weights N(0, 0.02)); random biases so a
    swapped bias would show."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.02)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    return module
