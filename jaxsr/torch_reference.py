"""PyTorch versions of jaxsr models, for the benchmark's side-by-side column only.

They follow the official implementations' layer order (BasicSR for RRDBNet) so the
PyTorch step does the same arithmetic as the jaxsr step. Tests do not use these:
parity tests carry their own, independently written references.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


class _DenseBlock(nn.Module):
    def __init__(self, nf: int, gc: int):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(nf + i * gc, gc, 3, 1, 1) for i in range(4)])
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)

    def forward(self, x):
        feats = [x]
        for conv in self.convs:
            feats.append(F.leaky_relu(conv(torch.cat(feats, 1)), 0.2))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x


class _RRDB(nn.Module):
    def __init__(self, nf: int, gc: int):
        super().__init__()
        self.blocks = nn.Sequential(*[_DenseBlock(nf, gc) for _ in range(3)])

    def forward(self, x):
        return self.blocks(x) * 0.2 + x


class RRDBNetTorch(nn.Module):
    """BasicSR's RRDBNet (×4 only; the benchmark compares the ×4 recipe)."""

    def __init__(self, num_feat: int = 64, num_block: int = 23, num_grow_ch: int = 32):
        super().__init__()
        nf = num_feat
        self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
        self.body = nn.Sequential(*[_RRDB(nf, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, 3, 3, 1, 1)

    def forward(self, x):
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


class VGGStyleDiscriminatorTorch(nn.Module):
    """BasicSR's VGGStyleDiscriminator (any input size; the linear layer adapts)."""

    def __init__(self, num_feat: int = 64, input_size: int = 128):
        super().__init__()
        nf = num_feat
        layers = [
            nn.Conv2d(3, nf, 3, 1, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(nf, nf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(nf),
            nn.LeakyReLU(0.2),
        ]
        cin = nf
        for width in (nf * 2, nf * 4, nf * 8, nf * 8):
            layers += [
                nn.Conv2d(cin, width, 3, 1, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.LeakyReLU(0.2),
                nn.Conv2d(width, width, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.LeakyReLU(0.2),
            ]
            cin = width
        self.features = nn.Sequential(*layers)
        side = input_size // 32
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(cin * side * side, 100), nn.LeakyReLU(0.2), nn.Linear(100, 1)
        )

    def forward(self, x):
        return self.head(self.features(x))


def vgg19_features_torch(last_index: int = 34) -> nn.Sequential:
    """torchvision ``vgg19().features[: last_index + 1]`` (random weights)."""
    cfg = [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ]
    layers, cin = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU()]
            cin = v
    return nn.Sequential(*layers[: last_index + 1])
