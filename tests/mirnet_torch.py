"""MIRNet in PyTorch, written from the spec (MODELS.md §3) as an independent reference,
with the official code's weight sharing (one DAU object per stream repeated across the
width, one default-argument PReLU shared by every DAU, reused SKFF_0 and down-samplers)
and its module names, so ``state_dict()`` has the official keys."""

import torch
import torch.nn.functional as F
from torch import nn


def conv(cin, cout, k, stride=1):
    return nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)


class SpatialConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 5, 1, 2, bias=False)


class SA(nn.Module):
    def __init__(self):
        super().__init__()
        self.spatial = SpatialConv()

    def forward(self, x):
        pooled = torch.cat([x.max(1, keepdim=True)[0], x.mean(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial.conv(pooled))


class CA(nn.Module):
    def __init__(self, c, reduction=8):
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(c, c // reduction, 1, bias=False),
            nn.ReLU(True),
            nn.Conv2d(c // reduction, c, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return x * self.conv_du(F.adaptive_avg_pool2d(x, 1))


class DAU(nn.Module):
    def __init__(self, c, act=nn.PReLU()):  # noqa: B008 - the official shared default
        super().__init__()
        self.body = nn.Sequential(conv(c, c, 3), act, conv(c, c, 3))
        self.SA, self.CA = SA(), CA(c)
        self.conv1x1 = nn.Conv2d(2 * c, c, 1, bias=False)

    def forward(self, x):
        res = self.body(x)
        return self.conv1x1(torch.cat([self.SA(res), self.CA(res)], 1)) + x


class SKFF(nn.Module):
    def __init__(self, c, height=3, reduction=8):
        super().__init__()
        d = max(c // reduction, 4)
        self.conv_du = nn.Sequential(nn.Conv2d(c, d, 1, bias=False), nn.PReLU())
        self.fcs = nn.ModuleList(nn.Conv2d(d, c, 1, bias=False) for _ in range(height))

    def forward(self, feats):
        z = self.conv_du(F.adaptive_avg_pool2d(sum(feats), 1))
        att = torch.softmax(torch.stack([fc(z) for fc in self.fcs], 1), dim=1)
        return sum(att[:, k] * feats[k] for k in range(len(feats)))


class AADown(nn.Module):
    def __init__(self, c):
        super().__init__()
        a = torch.tensor([1.0, 2.0, 1.0])
        filt = a[:, None] * a[None, :]
        self.register_buffer("filt", (filt / filt.sum()).expand(c, 1, 3, 3).clone())

    def forward(self, x):
        return F.conv2d(
            F.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt, stride=2, groups=x.shape[1]
        )


class ResDown(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.top = nn.Sequential(
            nn.Conv2d(c, c, 1, bias=False),
            nn.PReLU(),
            conv(c, c, 3),
            nn.PReLU(),
            AADown(c),
            nn.Conv2d(c, 2 * c, 1, bias=False),
        )
        self.bot = nn.Sequential(AADown(c), nn.Conv2d(c, 2 * c, 1, bias=False))

    def forward(self, x):
        return self.top(x) + self.bot(x)


class ResUp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.top = nn.Sequential(
            nn.Conv2d(c, c, 1, bias=False),
            nn.PReLU(),
            nn.ConvTranspose2d(c, c, 3, stride=2, padding=1, output_padding=1, bias=False),
            nn.PReLU(),
            nn.Conv2d(c, c // 2, 1, bias=False),
        )
        self.bot = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(c, c // 2, 1, bias=False),
        )

    def forward(self, x):
        return self.top(x) + self.bot(x)


class Chain(nn.Module):
    def __init__(self, c, factor, up):
        super().__init__()
        stages = []
        for _ in range(factor.bit_length() - 1):
            stages.append(ResUp(c) if up else ResDown(c))
            c = c // 2 if up else c * 2
        self.body = nn.Sequential(*stages)

    def forward(self, x):
        return self.body(x)


class MSRB(nn.Module):
    def __init__(self, n, height=3, width=2):
        super().__init__()
        self.n, self.height, self.width = n, height, width
        self.blocks = nn.ModuleList(nn.ModuleList([DAU(n * 2**j)] * width) for j in range(height))
        self.down = nn.ModuleDict(
            {
                f"{n}_4": Chain(n, 4, False),
                f"{n}_2": Chain(n, 2, False),
                f"{2 * n}_2": Chain(2 * n, 2, False),
            }
        )
        self.up = nn.ModuleDict(
            {
                f"{4 * n}_4": Chain(4 * n, 4, True),
                f"{4 * n}_2": Chain(4 * n, 2, True),
                f"{2 * n}_2": Chain(2 * n, 2, True),
            }
        )
        self.last_up = nn.ModuleDict({"1": Chain(2 * n, 2, True), "2": Chain(4 * n, 4, True)})
        self.selective_kernel = nn.ModuleList(SKFF(n * 2**j, height) for j in range(height))
        self.conv_out = conv(n, n, 3)

    def move(self, t, j, k):
        if j == k:
            return t
        diff = 2 ** abs(j - k)
        return (self.up if j < k else self.down)[f"{t.shape[1]}_{diff}"](t)

    def forward(self, x):
        out = []
        inp = x
        for j in range(self.height):
            inp = self.blocks[j][0](inp if j == 0 else self.down[f"{inp.shape[1]}_2"](inp))
            out.append(inp)
        for i in range(1, self.width):
            fused = [
                self.selective_kernel[j]([self.move(out[k], j, k) for k in range(self.height)])
                for j in range(self.height)
            ]
            out = [self.blocks[j][i](fused[j]) for j in range(self.height)]
        last = [out[0]] + [self.last_up[str(k)](out[k]) for k in range(1, self.height)]
        return self.conv_out(self.selective_kernel[0](last)) + x


class RRG(nn.Module):
    def __init__(self, n, n_mrb):
        super().__init__()
        self.body = nn.Sequential(*[MSRB(n) for _ in range(n_mrb)], conv(n, n, 3))

    def forward(self, x):
        return self.body(x) + x


class MIRNet(nn.Module):
    def __init__(self, n=64, n_rrg=3, n_mrb=2):
        super().__init__()
        self.conv_in = conv(3, n, 3)
        self.body = nn.Sequential(*[RRG(n, n_mrb) for _ in range(n_rrg)])
        self.conv_out = conv(n, 3, 3)

    def forward(self, x):
        return self.conv_out(self.body(self.conv_in(x))) + x
