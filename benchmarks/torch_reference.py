"""PyTorch versions of jaxsr models, for the benchmark's side-by-side column only.

They follow the official implementations' layer order (BasicSR for RRDBNet) so the
PyTorch step does the same arithmetic as the jaxsr step. Tests do not use these:
parity tests carry their own, independently written references. pix2pixHD's networks
are the parity tests' reference (``tests/pix2pixhd_torch.py``, the official layout),
re-exported here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from jaxsr.ops.labels import input_channels
from tests import (
    pix2pixhd_torch,  # noqa: F401 (re-exported for the benchmark)
    realesrgan_torch,
)


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


# -- DASR (official model/blindsr.py, moco/builder.py, utils/util.py) ------------------


class _DAConv(nn.Module):
    def __init__(self, c: int, reduction: int):
        super().__init__()
        self.kernel = nn.Sequential(
            nn.Linear(c, c, bias=False), nn.LeakyReLU(0.1), nn.Linear(c, 9 * c, bias=False)
        )
        self.conv = nn.Conv2d(c, c, 1)
        self.ca = nn.Sequential(
            nn.Conv2d(c, c // reduction, 1, bias=False),
            nn.LeakyReLU(0.1),
            nn.Conv2d(c // reduction, c, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x, v):
        b, c, h, w = x.shape
        k = self.kernel(v).view(-1, 1, 3, 3)  # grouped conv over batch × channels
        out = F.leaky_relu(F.conv2d(x.reshape(1, -1, h, w), k, groups=b * c, padding=1), 0.1)
        return self.conv(out.view(b, c, h, w)) + x * self.ca(v[:, :, None, None])


class _DAB(nn.Module):
    def __init__(self, c: int, reduction: int):
        super().__init__()
        self.da1, self.da2 = _DAConv(c, reduction), _DAConv(c, reduction)
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, 1, 1), nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x, v):
        out = F.leaky_relu(self.da1(x, v), 0.1)
        out = F.leaky_relu(self.conv1(out), 0.1)
        out = F.leaky_relu(self.da2(out, v), 0.1)
        return self.conv2(out) + x


class DASRTorch(nn.Module):
    """The DASR SR network on the 0–255 scale (mean shift, DAGs, EDSR upsampler)."""

    def __init__(self, scale=4, c=64, n_groups=5, n_blocks=5, reduction=8, embed=256):
        super().__init__()
        self.register_buffer("mean", 255.0 * torch.tensor([0.4488, 0.4371, 0.4040]).view(3, 1, 1))
        self.compress = nn.Sequential(nn.Linear(embed, c, bias=False), nn.LeakyReLU(0.1))
        self.head = nn.Conv2d(3, c, 3, 1, 1)
        self.groups = nn.ModuleList(
            nn.ModuleList([_DAB(c, reduction) for _ in range(n_blocks)]) for _ in range(n_groups)
        )
        self.group_convs = nn.ModuleList(nn.Conv2d(c, c, 3, 1, 1) for _ in range(n_groups))
        self.body_conv = nn.Conv2d(c, c, 3, 1, 1)
        up = []
        for r in [3] if scale == 3 else [2] * (scale // 2):
            up += [nn.Conv2d(c, r * r * c, 3, 1, 1), nn.PixelShuffle(r)]
        self.tail = nn.Sequential(*up, nn.Conv2d(c, 3, 3, 1, 1))

    def forward(self, x, fea):
        v = self.compress(fea)
        x = self.head(x - self.mean)
        res = x
        for blocks, conv in zip(self.groups, self.group_convs, strict=True):
            out = res
            for block in blocks:
                out = block(out, v)
            res = conv(out) + res
        return self.tail(self.body_conv(res) + x) + self.mean


class DegradationEncoderTorch(nn.Module):
    def __init__(self, widths=(64, 64, 128, 128, 256, 256)):
        super().__init__()
        layers, cin = [], 3
        for w, s in zip(widths, (1, 1, 2, 1, 2, 1), strict=True):
            layers += [nn.Conv2d(cin, w, 3, s, 1), nn.BatchNorm2d(w), nn.LeakyReLU(0.1)]
            cin = w
        self.E = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
        self.mlp = nn.Sequential(nn.Linear(cin, cin), nn.LeakyReLU(0.1), nn.Linear(cin, cin))

    def forward(self, x):
        fea = self.E(x).flatten(1)
        return fea, self.mlp(fea)


class DASRTrainStepTorch:
    """One official DASR iteration: degradation on the device (SRMDPreprocessing: per-image
    isotropic kernel, grouped 21×21 conv, bicubic, noise, round), MoCo (momentum update,
    keys, InfoNCE vs the queue, enqueue), G, L1, Adam."""

    def __init__(self, config):
        import copy

        from jaxsr.ops.imresize import resize_matrix

        m, d = config.model, config.degradation
        self.scale, self.sig = config.scale, (d.sig_min, d.sig_max)
        self.noise, self.ks = d.noise, d.kernel_size
        self.g = DASRTorch(
            config.scale, m.n_feats, m.n_groups, m.n_blocks, m.reduction, m.encoder_widths[-1]
        )
        self.eq = DegradationEncoderTorch(tuple(m.encoder_widths))
        self.ek = copy.deepcopy(self.eq)
        for p in self.ek.parameters():
            p.requires_grad_(False)
        dim, k = m.encoder_widths[-1], config.moco.queue_size
        self.queue = F.normalize(torch.randn(dim, k), dim=0)
        self.ptr, self.m, self.t = 0, config.moco.momentum, config.moco.temperature
        self.opt = torch.optim.Adam(list(self.g.parameters()) + list(self.eq.parameters()), 1e-4)
        p = config.data.patch_size
        self.resize = torch.tensor(
            resize_matrix(p, p // self.scale, 1.0 / self.scale, d.boundary), dtype=torch.float32
        )

    def degrade(self, hr):  # (B, 2, 3, P, P) in 0-255
        b, n, c, h, w = hr.shape
        ax = torch.arange(self.ks, dtype=torch.float32) - self.ks // 2
        sig = torch.rand(b) * (self.sig[1] - self.sig[0]) + self.sig[0]
        k = torch.exp(
            -(ax[None, :, None] ** 2 + ax[None, None, :] ** 2) / (2 * sig.view(-1, 1, 1) ** 2)
        )
        k = (k / k.sum((1, 2), keepdim=True)).repeat_interleave(n * c, 0)[:, None]
        x = F.pad(hr.reshape(1, b * n * c, h, w), [self.ks // 2] * 4, mode="reflect")
        x = F.conv2d(x, k, groups=b * n * c).view(b, n, c, h, w)
        x = torch.einsum("ih,bnchw,jw->bncij", self.resize, x, self.resize)
        if self.noise:
            x = x + torch.randn_like(x) * torch.rand(b, 1, 1, 1, 1) * self.noise
        return x.round().clamp(0, 255)

    def __call__(self, hr):
        lq = self.degrade(hr)
        with torch.no_grad():
            for pk, pq in zip(self.ek.parameters(), self.eq.parameters(), strict=True):
                pk.mul_(self.m).add_(pq, alpha=1 - self.m)
            k = F.normalize(self.ek(lq[:, 1])[1], dim=1)
        fea, out = self.eq(lq[:, 0])
        q = F.normalize(out, dim=1)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ self.queue], 1) / self.t
        loss_con = F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long))
        sr = self.g(lq[:, 0], fea)
        loss = F.l1_loss(sr, hr[:, 0]) + loss_con
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        n = k.shape[0]
        self.queue[:, self.ptr : self.ptr + n] = k.T
        self.ptr = (self.ptr + n) % self.queue.shape[1]
        return loss


# -- MIRNet (official networks/MIRNet_model.py, with its weight sharing) ---------------


class _DAUTorch(nn.Module):
    def __init__(self, c: int, act: nn.Module):
        super().__init__()
        self.c0, self.act, self.c2 = (
            nn.Conv2d(c, c, 3, 1, 1, bias=False),
            act,
            nn.Conv2d(c, c, 3, 1, 1, bias=False),
        )
        self.sa = nn.Conv2d(2, 1, 5, 1, 2, bias=False)
        self.ca = nn.Sequential(
            nn.Conv2d(c, c // 8, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(c // 8, c, 1, bias=False),
            nn.Sigmoid(),
        )
        self.fuse = nn.Conv2d(2 * c, c, 1, bias=False)

    def forward(self, x):
        r = self.c2(self.act(self.c0(x)))
        s = torch.sigmoid(
            self.sa(torch.cat([r.max(1, keepdim=True)[0], r.mean(1, keepdim=True)], 1))
        )
        return self.fuse(torch.cat([r * s, r * self.ca(F.adaptive_avg_pool2d(r, 1))], 1)) + x


class _SKFFTorch(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        d = max(c // 8, 4)
        self.du = nn.Sequential(nn.Conv2d(c, d, 1, bias=False), nn.PReLU())
        self.fcs = nn.ModuleList(nn.Conv2d(d, c, 1, bias=False) for _ in range(3))

    def forward(self, feats):
        z = self.du(F.adaptive_avg_pool2d(sum(feats), 1))
        att = torch.softmax(torch.stack([fc(z) for fc in self.fcs], 1), 1)
        return sum(att[:, k] * feats[k] for k in range(3))


def _aa_down(x):
    filt = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    return F.conv2d(
        F.pad(x, (1, 1, 1, 1), mode="reflect"),
        filt.expand(x.shape[1], 1, 3, 3),
        stride=2,
        groups=x.shape[1],
    )


class _ResampleTorch(nn.Module):
    """One ×2 residual down (channels ×2) or up (channels ÷2) stage."""

    def __init__(self, c: int, up: bool):
        super().__init__()
        self.up, out = up, c // 2 if up else 2 * c
        mid = (
            nn.ConvTranspose2d(c, c, 3, 2, 1, 1, bias=False)
            if up
            else nn.Conv2d(c, c, 3, 1, 1, bias=False)
        )
        self.top = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.PReLU(), mid, nn.PReLU())
        self.top_out, self.bot = nn.Conv2d(c, out, 1, bias=False), nn.Conv2d(c, out, 1, bias=False)

    def forward(self, x):
        t = self.top(x)
        if self.up:
            return self.top_out(t) + self.bot(
                F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            )
        return self.top_out(_aa_down(t)) + self.bot(_aa_down(x))


class _MRBTorch(nn.Module):
    def __init__(self, n: int, act: nn.Module):
        super().__init__()
        w = [n, 2 * n, 4 * n]
        self.daus = nn.ModuleList(_DAUTorch(c, act) for c in w)  # used by both columns
        self.skff = nn.ModuleList(_SKFFTorch(c) for c in w)
        chain = lambda c, f, up: nn.Sequential(
            *[_ResampleTorch(c // 2**i if up else c * 2**i, up) for i in range(f)]
        )  # noqa: E731
        self.moves = nn.ModuleDict(
            {
                "0_1": chain(n, 1, False),
                "0_2": chain(n, 2, False),
                "1_2": chain(2 * n, 1, False),
                "2_0": chain(4 * n, 2, True),
                "2_1": chain(4 * n, 1, True),
                "1_0": chain(2 * n, 1, True),
                "last_1": chain(2 * n, 1, True),
                "last_2": chain(4 * n, 2, True),
            }
        )
        self.conv_out = nn.Conv2d(n, n, 3, 1, 1, bias=False)

    def forward(self, x):
        b = [self.daus[0](x)]
        b.append(self.daus[1](self.moves["0_1"](b[0])))
        b.append(self.daus[2](self.moves["1_2"](b[1])))
        move = lambda t, k, j: t if k == j else self.moves[f"{k}_{j}"](t)  # noqa: E731
        b = [self.daus[j](self.skff[j]([move(b[k], k, j) for k in range(3)])) for j in range(3)]
        out = self.skff[0]([b[0], self.moves["last_1"](b[1]), self.moves["last_2"](b[2])])
        return self.conv_out(out) + x


class MIRNetTorch(nn.Module):
    def __init__(self, n: int = 64, n_rrg: int = 3, n_mrb: int = 2):
        super().__init__()
        act = nn.PReLU()  # one slope for every DAU, as the official default argument
        self.conv_in, self.conv_out = (
            nn.Conv2d(3, n, 3, 1, 1, bias=False),
            nn.Conv2d(n, 3, 3, 1, 1, bias=False),
        )
        self.rrgs = nn.ModuleList(
            nn.ModuleList(_MRBTorch(n, act) for _ in range(n_mrb)) for _ in range(n_rrg)
        )
        self.rrg_convs = nn.ModuleList(nn.Conv2d(n, n, 3, 1, 1, bias=False) for _ in range(n_rrg))

    def forward(self, x):
        h = self.conv_in(x)
        for mrbs, conv in zip(self.rrgs, self.rrg_convs, strict=True):
            r = h
            for m in mrbs:
                r = m(r)
            h = conv(r) + h
        return self.conv_out(h) + x


class _VGGSlices(nn.Module):
    """pix2pixHD's ``Vgg19``: torchvision features split after relu1_1 … relu5_1."""

    def __init__(self):
        super().__init__()
        features = vgg19_features_torch(29)
        bounds = (0, 2, 7, 12, 21, 30)
        self.slices = nn.ModuleList(
            nn.Sequential(*features[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        )
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        out = []
        for s in self.slices:
            x = s(x)
            out.append(x)
        return out


def vgg19_relu_slices() -> nn.Module:
    return _VGGSlices().eval()


# -- the benchmark's per-method pieces (named by each method's entry in jaxsr.methods) --
# ``*_train_step(config) -> step()`` runs one training iteration of the official code;
# ``*_infer(config) -> net(x NCHW in [0, 1]) -> NCHW`` is the network for tiled inference.


def esrgan_train_step(config):
    """BasicSR's iteration: RRDBNet + L1 + Adam (task ``sr``), or ESRGANModel's G and D
    steps with VGG19 ``conv5_4`` and RaGAN (task ``esrgan``); LR precomputed."""
    if config.scale != 4:
        return None
    m, o = config.model, config.optim
    net = RRDBNetTorch(m.num_feat, m.num_block, m.num_grow_ch)
    opt = torch.optim.Adam(net.parameters(), lr=o.lr, betas=(o.b1, o.b2))
    n, p = config.data.batch_size, config.data.patch_size
    gt = torch.rand(n, 3, p, p)
    lq = torch.rand(n, 3, p // 4, p // 4)
    bce = torch.nn.BCEWithLogitsLoss()
    gan = config.task == "esrgan"
    if gan:
        disc = VGGStyleDiscriminatorTorch(config.discriminator.num_feat, p)
        opt_d = torch.optim.Adam(disc.parameters(), lr=config.optim_d.lr, betas=(o.b1, o.b2))
        vgg = vgg19_features_torch().eval()
        for q in vgg.parameters():
            q.requires_grad_(False)
        w = config.losses

    def step():
        opt.zero_grad(set_to_none=True)
        sr = net(lq)
        loss = torch.mean(torch.abs(sr - gt))
        if gan:  # BasicSR ESRGANModel.optimize_parameters
            for q in disc.parameters():
                q.requires_grad_(False)
            loss = w.l1 * loss + w.perceptual * torch.mean(torch.abs(vgg(sr) - vgg(gt)))
            real = disc(gt).detach()
            fake = disc(sr)
            loss = loss + w.gan * 0.5 * (
                bce(real - fake.mean(), torch.zeros_like(real))
                + bce(fake - real.mean(), torch.ones_like(fake))
            )
        loss.backward()
        opt.step()
        if gan:
            for q in disc.parameters():
                q.requires_grad_(True)
            opt_d.zero_grad(set_to_none=True)
            fake_d = disc(sr.detach())
            real_d = disc(gt)
            l_real = 0.5 * bce(real_d - fake_d.detach().mean(), torch.ones_like(real_d))
            l_fake = 0.5 * bce(fake_d - real_d.detach().mean(), torch.zeros_like(fake_d))
            (l_real + l_fake).backward()
            opt_d.step()

    return step


def esrgan_infer(config):
    if config.scale != 4:
        return None
    m = config.model
    return RRDBNetTorch(m.num_feat, m.num_block, m.num_grow_ch).eval()


def realesrgan_infer(config):
    """Real-ESRGAN's generator: RRDBNet ×4, or SRVGGNetCompact (the compact preset)."""
    m = config.model
    if m.name == "srvgg":
        return realesrgan_torch.TorchSRVGG(m.num_feat, m.num_conv, config.scale, m.act_type).eval()
    return esrgan_infer(config)


# torchvision vgg19().features indices of conv1_2, conv2_2, conv3_4, conv4_4, conv5_4
_VGG_CONVS = {"conv1_2": 2, "conv2_2": 7, "conv3_4": 16, "conv4_4": 25, "conv5_4": 34}


def realesrgan_train_step(config):
    """``RealESRGANModel``'s iteration: ``feed_data`` (kernels drawn per image on the
    host as the dataset does, the second-order degradations, the training-pair pool, USM)
    then ``optimize_parameters`` (G: L1 + VGG19 perceptual at its layer weights +
    vanilla GAN on the U-Net D with spectral norm; D: real and fake); RRDBNet ×4 only,
    GT crops of 128² or more (smaller ones shrink below the 21-tap kernels' reflection
    padding, which PyTorch refuses; the official crops are 256²)."""
    if config.scale != 4 or config.model.name != "rrdbnet" or config.data.patch_size < 128:
        return None
    m, o, c = config.model, config.optim, config.degradation
    net = RRDBNetTorch(m.num_feat, m.num_block, m.num_grow_ch)
    opt = torch.optim.Adam(net.parameters(), lr=o.lr, betas=(o.b1, o.b2))
    gan = config.task == "realesrgan"
    if gan:
        disc = realesrgan_torch.TorchUNetD(config.discriminator.num_feat)
        opt_d = torch.optim.Adam(disc.parameters(), lr=config.optim_d.lr, betas=(o.b1, o.b2))
        layers = {_VGG_CONVS[k]: float(v) for k, v in config.perceptual.layer_weights.items()}
        vgg = vgg19_features_torch(max(layers)).eval()
        for q in vgg.parameters():
            q.requires_grad_(False)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        w = config.losses
    n, p = config.data.batch_size, config.data.patch_size
    gt_all = torch.rand(n, 3, p, p)
    pool = {"size": int(config.pool_size), "ptr": 0}

    def percep(sr, gt):
        a, b, total = (sr - mean) / std, (gt - mean) / std, 0.0
        for i, layer in enumerate(vgg):
            a, b = layer(a), layer(b)
            if i in layers:
                total = total + layers[i] * torch.mean(torch.abs(a - b))
        return total

    def dequeue_and_enqueue(lq, gt):
        b = lq.size(0)
        if not pool["size"]:
            return lq, gt
        if "lq" not in pool:
            pool["lq"] = torch.zeros(pool["size"], *lq.shape[1:])
            pool["gt"] = torch.zeros(pool["size"], *gt.shape[1:])
        if pool["ptr"] == pool["size"]:
            idx = torch.randperm(pool["size"])
            pool["lq"], pool["gt"] = pool["lq"][idx], pool["gt"][idx]
            out = pool["lq"][:b].clone(), pool["gt"][:b].clone()
            pool["lq"][:b], pool["gt"][:b] = lq, gt
            return out
        pool["lq"][pool["ptr"] : pool["ptr"] + b] = lq
        pool["gt"][pool["ptr"] : pool["ptr"] + b] = gt
        pool["ptr"] += b
        return lq, gt

    bce = torch.nn.BCEWithLogitsLoss()

    def step():
        with torch.no_grad():
            lq = realesrgan_torch.feed_data(gt_all, c)
            lq, gt = dequeue_and_enqueue(lq, gt_all)
            gt_usm = realesrgan_torch.usm_sharp(gt)
        opt.zero_grad(set_to_none=True)
        sr = net(lq)
        loss = torch.mean(torch.abs(sr - gt_usm))
        if gan:
            for q in disc.parameters():
                q.requires_grad_(False)
            fake = disc(sr)
            loss = w.l1 * loss + w.perceptual * percep(sr, gt_usm)
            loss = loss + w.gan * bce(fake, torch.ones_like(fake))
        loss.backward()
        opt.step()
        if gan:
            for q in disc.parameters():
                q.requires_grad_(True)
            opt_d.zero_grad(set_to_none=True)
            real_d = disc(gt)
            bce(real_d, torch.ones_like(real_d)).backward()
            fake_d = disc(sr.detach())
            bce(fake_d, torch.zeros_like(fake_d)).backward()
            opt_d.step()

    return step


def dasr_train_step(config):
    """The official iteration: degradation on the device (``SRMDPreprocessing``), MoCo,
    G, Adam."""
    dasr_step = DASRTrainStepTorch(config)
    p = config.data.patch_size
    hr = torch.rand(config.data.batch_size, 2, 3, p, p) * 255
    return lambda: dasr_step(hr)


def dasr_infer(config):
    m = config.model
    g = DASRTorch(
        config.scale, m.n_feats, m.n_groups, m.n_blocks, m.reduction, m.encoder_widths[-1]
    )
    enc = DegradationEncoderTorch(tuple(m.encoder_widths)).eval()
    return lambda x: g(x * 255, enc(x * 255)[0]) / 255


def mirnet_train_step(config):
    """The official ``train_denoising.py`` iteration: σ = 25 noise, Charbonnier, Adam."""
    m, o = config.model, config.optim
    net = MIRNetTorch(m.n_feat, m.n_rrg, m.n_mrb)
    opt = torch.optim.Adam(net.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    p = config.data.patch_size
    clean = torch.rand(config.data.batch_size, 3, p, p)

    def step():
        noisy = (clean + torch.randn_like(clean) * (25 / 255)).clamp(0, 1)
        opt.zero_grad(set_to_none=True)
        out = net(noisy).clamp(0, 1)
        torch.mean(torch.sqrt((out - clean) ** 2 + 1e-6)).backward()
        opt.step()

    return step


def mirnet_infer(config):
    m = config.model
    return MIRNetTorch(m.n_feat, m.n_rrg, m.n_mrb).eval()


def pix2pixhd_steps(config, train_hw, infer_hw, bf16: bool):
    """``(train step, forward)``: the official iteration (pix2pixHD_model.forward + the G
    and D Adam steps) at ``train_hw`` and G's forward at ``infer_hw``."""
    torch.manual_seed(0)
    m, d = config.model, config.discriminator
    in_nc = input_channels(config.label_nc, not config.no_instance)  # as jaxsr's G reads
    g = pix2pixhd_torch.GlobalGenerator(in_nc, 3, m.ngf, m.n_downsampling, m.n_blocks)
    disc = pix2pixhd_torch.MultiscaleDiscriminator(in_nc + 3, d.ndf, d.n_layers, d.num_D)
    vgg = vgg19_relu_slices()
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    n = config.data.batch_size
    label = F.one_hot(torch.randint(0, config.label_nc, (n, *train_hw)))
    edge = torch.zeros(n, in_nc - config.label_nc, *train_hw)
    x = torch.cat([label.permute(0, 3, 1, 2).float(), edge], 1)
    real = torch.rand(n, 3, *train_hw) * 2 - 1
    device = "cuda" if torch.cuda.is_available() else "cpu"
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)

    def step():
        with autocast:
            fake = g(x)
            pred_fake_d = disc(torch.cat([x, fake.detach()], 1))
            pred_real = disc(torch.cat([x, real], 1))
            pred_fake = disc(torch.cat([x, fake], 1))
            mse = F.mse_loss
            loss_d = 0.5 * sum(
                mse(pf[-1], torch.zeros_like(pf[-1])) + mse(pr[-1], torch.ones_like(pr[-1]))
                for pf, pr in zip(pred_fake_d, pred_real, strict=True)
            )
            loss_g = sum(mse(p[-1], torch.ones_like(p[-1])) for p in pred_fake)
            fm_w = 4.0 / (d.n_layers + 1) / d.num_D
            for pf, pr in zip(pred_fake, pred_real, strict=True):
                for j in range(len(pf) - 1):
                    loss_g = loss_g + 10 * fm_w * torch.mean(torch.abs(pf[j] - pr[j].detach()))
            weights = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
            for w, a, b in zip(weights, vgg(fake), vgg(real), strict=True):
                loss_g = loss_g + 10 * w * torch.mean(torch.abs(a - b.detach()))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

    label = F.one_hot(torch.randint(0, config.label_nc, (1, *infer_hw)))
    edge = torch.zeros(1, in_nc - config.label_nc, *infer_hw)
    xi = torch.cat([label.permute(0, 3, 1, 2).float(), edge], 1)

    def forward():
        with torch.no_grad(), autocast:
            g(xi)

    return step, forward
