"""PyTorch SFTGAN networks written from spec §5.3 (xinntao/SFTGAN ``architectures.py``
layout, so their state dicts carry the official key names). Test-only reference for
the parity tests."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class SFTLayer(nn.Module):
    def __init__(self, nf=64, cond=32):
        super().__init__()
        self.SFT_scale_conv0 = nn.Conv2d(cond, cond, 1)
        self.SFT_scale_conv1 = nn.Conv2d(cond, nf, 1)
        self.SFT_shift_conv0 = nn.Conv2d(cond, cond, 1)
        self.SFT_shift_conv1 = nn.Conv2d(cond, nf, 1)

    def forward(self, x):
        scale = self.SFT_scale_conv1(F.leaky_relu(self.SFT_scale_conv0(x[1]), 0.1))
        shift = self.SFT_shift_conv1(F.leaky_relu(self.SFT_shift_conv0(x[1]), 0.1))
        return x[0] * (scale + 1) + shift


class ResBlockSFT(nn.Module):
    def __init__(self, nf=64, cond=32):
        super().__init__()
        self.sft0 = SFTLayer(nf, cond)
        self.conv0 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.sft1 = SFTLayer(nf, cond)
        self.conv1 = nn.Conv2d(nf, nf, 3, 1, 1)

    def forward(self, x):
        fea = F.relu(self.conv0(self.sft0(x)))
        fea = self.conv1(self.sft1((fea, x[1])))
        return (x[0] + fea, x[1])


class SFTNet(nn.Module):
    def __init__(self, nf=64, nb=16, cond=32, classes=8):
        super().__init__()
        self.conv0 = nn.Conv2d(3, nf, 3, 1, 1)
        branch = [ResBlockSFT(nf, cond) for _ in range(nb)]
        branch += [SFTLayer(nf, cond), nn.Conv2d(nf, nf, 3, 1, 1)]
        self.sft_branch = nn.Sequential(*branch)
        self.HR_branch = nn.Sequential(
            nn.Conv2d(nf, nf * 4, 3, 1, 1),
            nn.PixelShuffle(2),
            nn.ReLU(True),
            nn.Conv2d(nf, nf * 4, 3, 1, 1),
            nn.PixelShuffle(2),
            nn.ReLU(True),
            nn.Conv2d(nf, nf, 3, 1, 1),
            nn.ReLU(True),
            nn.Conv2d(nf, 3, 3, 1, 1),
        )
        self.CondNet = nn.Sequential(
            nn.Conv2d(classes, 128, 4, 4),
            nn.LeakyReLU(0.1, True),
            nn.Conv2d(128, 128, 1),
            nn.LeakyReLU(0.1, True),
            nn.Conv2d(128, 128, 1),
            nn.LeakyReLU(0.1, True),
            nn.Conv2d(128, 128, 1),
            nn.LeakyReLU(0.1, True),
            nn.Conv2d(128, cond, 1),
        )

    def forward(self, x):
        cond = self.CondNet(x[1])
        fea = self.conv0(x[0])
        # The Sequential passes (fea, cond) through the ResBlocks; the last SFT layer
        # returns a tensor and the final conv takes it.
        res = self.sft_branch((fea, cond))
        return self.HR_branch(fea + res)


def _block(cin, cout, k, s):
    return [nn.Conv2d(cin, cout, k, s, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1, True)]


class ACDDiscriminator(nn.Module):
    """``ACD_VGG_BN_96``."""

    def __init__(self, nf=64, classes=8):
        super().__init__()
        layers = [nn.Conv2d(3, nf, 3, 1, 1), nn.LeakyReLU(0.1, True)] + _block(nf, nf, 4, 2)
        for cin, cout in ((nf, nf * 2), (nf * 2, nf * 4), (nf * 4, nf * 8)):
            layers += _block(cin, cout, 3, 1) + _block(cout, cout, 4, 2)
        self.feature = nn.Sequential(*layers)
        flat = nf * 8 * 6 * 6
        self.gan = nn.Sequential(nn.Linear(flat, 100), nn.LeakyReLU(0.1, True), nn.Linear(100, 1))
        self.cls = nn.Sequential(
            nn.Linear(flat, 100), nn.LeakyReLU(0.1, True), nn.Linear(100, classes)
        )

    def forward(self, x):
        fea = self.feature(x).flatten(1)
        return self.gan(fea), self.cls(fea)
