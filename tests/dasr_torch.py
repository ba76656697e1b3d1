"""DASR in PyTorch, written from the spec (MODELS.md §2.2–2.3) as an independent
reference for the parity tests. Module and attribute names follow the official
``model/blindsr.py`` so that ``state_dict()`` has the official key names."""

import math

import torch
import torch.nn.functional as F
from torch import nn

MEAN = (0.4488, 0.4371, 0.4040)


def conv(cin, cout, k=3, stride=1, bias=True):
    return nn.Conv2d(cin, cout, k, stride, k // 2, bias=bias)


class MeanShift(nn.Conv2d):
    def __init__(self, sign):
        super().__init__(3, 3, 1)
        self.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.bias.data = sign * 255.0 * torch.tensor(MEAN)
        for p in self.parameters():
            p.requires_grad = False


class CALayer(nn.Module):
    def __init__(self, c, reduction):
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(c, c // reduction, 1, bias=False),
            nn.LeakyReLU(0.1, True),
            nn.Conv2d(c // reduction, c, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x, v):
        return x * self.conv_du(v[:, :, None, None])


class DAConv(nn.Module):
    def __init__(self, c, reduction):
        super().__init__()
        self.kernel = nn.Sequential(
            nn.Linear(c, c, bias=False), nn.LeakyReLU(0.1, True), nn.Linear(c, c * 9, bias=False)
        )
        self.conv = conv(c, c, 1)
        self.ca = CALayer(c, reduction)

    def forward(self, x, v):
        b, c, h, w = x.shape
        k = self.kernel(v).view(-1, 1, 3, 3)
        out = F.leaky_relu(F.conv2d(x.view(1, -1, h, w), k, groups=b * c, padding=1), 0.1)
        return self.conv(out.view(b, -1, h, w)) + self.ca(x, v)


class DAB(nn.Module):
    def __init__(self, c, reduction):
        super().__init__()
        self.da_conv1, self.da_conv2 = DAConv(c, reduction), DAConv(c, reduction)
        self.conv1, self.conv2 = conv(c, c), conv(c, c)

    def forward(self, x, v):
        out = F.leaky_relu(self.da_conv1(x, v), 0.1)
        out = F.leaky_relu(self.conv1(out), 0.1)
        out = F.leaky_relu(self.da_conv2(out, v), 0.1)
        return self.conv2(out) + x


class DAG(nn.Module):
    def __init__(self, c, reduction, n_blocks):
        super().__init__()
        self.body = nn.ModuleList([DAB(c, reduction) for _ in range(n_blocks)] + [conv(c, c)])

    def forward(self, x, v):
        res = x
        for block in self.body[:-1]:
            res = block(res, v)
        return self.body[-1](res) + x


class DASR(nn.Module):
    def __init__(self, scale=4, c=64, n_groups=5, n_blocks=5, reduction=8, embed=256):
        super().__init__()
        self.sub_mean, self.add_mean = MeanShift(-1), MeanShift(1)
        self.head = nn.Sequential(conv(3, c))
        self.compress = nn.Sequential(nn.Linear(embed, c, bias=False), nn.LeakyReLU(0.1, True))
        self.body = nn.ModuleList(
            [DAG(c, reduction, n_blocks) for _ in range(n_groups)] + [conv(c, c)]
        )
        up = []
        if scale == 3:
            up += [conv(c, 9 * c), nn.PixelShuffle(3)]
        else:
            for _ in range(int(math.log2(scale))):
                up += [conv(c, 4 * c), nn.PixelShuffle(2)]
        self.tail = nn.Sequential(nn.Sequential(*up), conv(c, 3))

    def forward(self, x, fea):
        v = self.compress(fea)
        x = self.head(self.sub_mean(x))
        res = x
        for group in self.body[:-1]:
            res = group(res, v)
        res = self.body[-1](res) + x
        return self.add_mean(self.tail(res))


class Encoder(nn.Module):
    def __init__(self, widths=(64, 64, 128, 128, 256, 256)):
        super().__init__()
        layers, cin = [], 3
        for w, s in zip(widths, (1, 1, 2, 1, 2, 1), strict=True):
            layers += [conv(cin, w, stride=s), nn.BatchNorm2d(w), nn.LeakyReLU(0.1, True)]
            cin = w
        layers.append(nn.AdaptiveAvgPool2d(1))
        self.E = nn.Sequential(*layers)
        self.mlp = nn.Sequential(nn.Linear(cin, cin), nn.LeakyReLU(0.1, True), nn.Linear(cin, cin))

    def forward(self, x):
        fea = self.E(x).flatten(1)
        return fea, self.mlp(fea)


class MoCo(nn.Module):
    def __init__(self, widths):
        super().__init__()
        self.encoder_q = Encoder(widths)


class BlindSR(nn.Module):
    """Test forward: ``fea = E.encoder_q(lr)`` (eval BN), ``sr = G(lr, fea)``; 0–255."""

    def __init__(self, scale=4, c=64, n_groups=5, n_blocks=5, reduction=8, widths=None):
        super().__init__()
        widths = widths or (64, 64, 128, 128, 256, 256)
        self.G = DASR(scale, c, n_groups, n_blocks, reduction, widths[-1])
        self.E = MoCo(widths)

    def forward(self, x):
        fea, _ = self.E.encoder_q(x)
        return self.G(x, fea)
