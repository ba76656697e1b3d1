"""Real-ESRGAN in PyTorch, written from the spec for the tests and the benchmark:
``SRVGGNetCompact``, the spectrally normalised U-Net discriminator, and the official
degradation pipeline — ``RealESRGANDataset.__getitem__``'s kernels (NumPy and Python
``random``, per image) and ``RealESRGANModel.feed_data`` (per batch, NCHW,
``F.interpolate``, ``torch.randn``/``torch.poisson``) with BasicSR's ``filter2D``,
``USMSharp`` and ``DiffJPEG`` as this file writes them. The kernel shapes come from
``jaxsr.data.realworld``'s NumPy functions, which ``test_realworld.py`` checks against
the formulas pixel by pixel; everything else is independent of jaxsr."""

from __future__ import annotations

import math
import random

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from jaxsr.data import realworld as rw

KINDS = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")


# -- the networks (srvgg_arch.py, BasicSR's UNetDiscriminatorSN) ---------------------------


class TorchSRVGG(nn.Module):
    def __init__(self, num_feat, num_conv, upscale, act_type):
        super().__init__()
        self.upscale = upscale
        act = {
            "prelu": lambda: nn.PReLU(num_parameters=num_feat),
            "relu": lambda: nn.ReLU(),
            "leakyrelu": lambda: nn.LeakyReLU(0.1),
        }[act_type]
        self.body = nn.ModuleList([nn.Conv2d(3, num_feat, 3, 1, 1), act()])
        for _ in range(num_conv):
            self.body.extend([nn.Conv2d(num_feat, num_feat, 3, 1, 1), act()])
        self.body.append(nn.Conv2d(num_feat, 3 * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x):
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


class TorchUNetD(nn.Module):
    def __init__(self, num_feat, skip=True):
        super().__init__()
        sn = torch.nn.utils.spectral_norm
        nf = num_feat
        self.skip = skip
        self.conv0 = nn.Conv2d(3, nf, 3, 1, 1)
        self.conv1 = sn(nn.Conv2d(nf, nf * 2, 4, 2, 1, bias=False))
        self.conv2 = sn(nn.Conv2d(nf * 2, nf * 4, 4, 2, 1, bias=False))
        self.conv3 = sn(nn.Conv2d(nf * 4, nf * 8, 4, 2, 1, bias=False))
        self.conv4 = sn(nn.Conv2d(nf * 8, nf * 4, 3, 1, 1, bias=False))
        self.conv5 = sn(nn.Conv2d(nf * 4, nf * 2, 3, 1, 1, bias=False))
        self.conv6 = sn(nn.Conv2d(nf * 2, nf, 3, 1, 1, bias=False))
        self.conv7 = sn(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv8 = sn(nn.Conv2d(nf, nf, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(nf, 1, 3, 1, 1)

    def forward(self, x):
        act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3))) + (x2 if self.skip else 0)
        x5 = act(self.conv5(up(x4))) + (x1 if self.skip else 0)
        x6 = act(self.conv6(up(x5))) + (x0 if self.skip else 0)
        return self.conv9(act(self.conv8(act(self.conv7(x6)))))


# -- the degradations ------------------------------------------------------------------------


def filter2d(img, kernel):
    """BasicSR ``filter2D``: reflect padding, one kernel per image (or one for all)."""
    k = kernel.size(-1)
    b, c, h, w = img.size()
    img = F.pad(img, (k // 2,) * 4, mode="reflect")
    ph, pw = img.size()[-2:]
    if kernel.size(0) == 1:
        return F.conv2d(img.reshape(b * c, 1, ph, pw), kernel.view(1, 1, k, k)).view(b, c, h, w)
    img = img.reshape(1, b * c, ph, pw)
    kernel = kernel.view(b, 1, k, k).repeat(1, c, 1, 1).view(b * c, 1, k, k)
    return F.conv2d(img, kernel, groups=b * c).view(b, c, h, w)


def usm_sharp(img, weight=0.5, threshold=10):
    """BasicSR ``USMSharp(radius=50)``: OpenCV's 51-tap Gaussian, σ = 8."""
    x = np.arange(51) - 25.0
    g = np.exp(-(x**2) / (2 * 8.0**2))
    g /= g.sum()
    kernel = torch.from_numpy(np.outer(g, g).astype(np.float32))[None]
    blur = filter2d(img, kernel)
    residual = img - blur
    mask = (torch.abs(residual) * 255 > threshold).float()
    soft = filter2d(mask, kernel)
    sharp = torch.clip(img + weight * residual, 0, 1)
    return soft * sharp + (1 - soft) * img


def diffjpeg(img, quality):
    """BasicSR ``DiffJPEG(differentiable=False)``, its steps in its own layout."""
    y_table = torch.tensor(
        np.array(
            [
                [16, 11, 10, 16, 24, 40, 51, 61],
                [12, 12, 14, 19, 26, 58, 60, 55],
                [14, 13, 16, 24, 40, 57, 69, 56],
                [14, 17, 22, 29, 51, 87, 80, 62],
                [18, 22, 37, 56, 68, 109, 103, 77],
                [24, 35, 55, 64, 81, 104, 113, 92],
                [49, 64, 78, 87, 103, 121, 120, 101],
                [72, 92, 95, 98, 112, 100, 103, 99],
            ],
            np.float32,
        ).T
    )
    c_table = np.full((8, 8), 99, np.float32)
    c_table[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]
    c_table = torch.tensor(c_table.T)
    factor = torch.tensor([5000.0 / q if q < 50 else 200.0 - 2 * q for q in quality]) / 100
    b, _, h, w = img.shape
    img = F.pad(img, (0, -w % 16, 0, -h % 16))
    H, W = img.shape[-2:]
    m = torch.tensor(
        [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
    ).T
    ycc = torch.tensordot(img.permute(0, 2, 3, 1) * 255, m, dims=1) + torch.tensor(
        [0.0, 128.0, 128.0]
    )
    chans = {"y": ycc[..., 0]}
    for i, name in ((1, "cb"), (2, "cr")):
        chans[name] = F.avg_pool2d(ycc[..., i].unsqueeze(1), 2, 2, count_include_pad=False)[:, 0]
    basis = np.zeros((8, 8, 8, 8), np.float32)
    for x, yy, u, v in np.ndindex(8, 8, 8, 8):
        basis[x, yy, u, v] = math.cos((2 * x + 1) * u * math.pi / 16) * math.cos(
            (2 * yy + 1) * v * math.pi / 16
        )
    alpha = np.array([1.0 / np.sqrt(2)] + [1] * 7)
    scale = torch.from_numpy(np.outer(alpha, alpha) * 0.25).float()
    basis = torch.from_numpy(basis)
    inv = torch.from_numpy(np.ascontiguousarray(basis.numpy().transpose(2, 3, 0, 1)))
    out = {}
    for name, chan in chans.items():
        hh, ww = chan.shape[1:]
        blocks = (
            chan.view(b, hh // 8, 8, -1, 8).permute(0, 1, 3, 2, 4).contiguous().view(b, -1, 8, 8)
        )
        coef = scale * torch.tensordot(blocks - 128, basis, dims=2)
        table = (y_table if name == "y" else c_table).expand(b, 1, 8, 8) * factor.view(b, 1, 1, 1)
        coef = torch.round(coef.float() / table) * table
        blocks = (
            0.25
            * torch.tensordot(coef * torch.from_numpy(np.outer(alpha, alpha)).float(), inv, dims=2)
            + 128
        )
        merged = (
            blocks.view(b, hh // 8, ww // 8, 8, 8)
            .permute(0, 1, 3, 2, 4)
            .contiguous()
            .view(b, hh, ww)
        )
        if name != "y":
            merged = merged.unsqueeze(-1).repeat(1, 1, 2, 2).view(-1, hh * 2, ww * 2)
        out[name] = merged
    ycc = torch.stack([out["y"], out["cb"], out["cr"]], -1)
    back = torch.tensor([[1.0, 0.0, 1.402], [1, -0.344136, -0.714136], [1, 1.772, 0]]).T
    rgb = torch.tensordot(ycc + torch.tensor([0, -128.0, -128.0]), back, dims=1).permute(0, 3, 1, 2)
    rgb = torch.clamp(rgb, 0, 255) / 255
    return rgb[:, :, :h, :w]


def _beta(lo, hi):
    return np.random.uniform(lo, 1) if np.random.uniform() < 0.5 else np.random.uniform(1, hi)


def random_mixed_kernel(c, stage, size):
    kind = random.choices(KINDS, c[f"kernel_prob{stage}"])[0]
    sig = c[f"blur_sigma{stage}"]
    iso = kind.endswith("_iso") or kind == "iso"
    sx = np.random.uniform(*sig)
    sy, theta = (sx, 0.0) if iso else (np.random.uniform(*sig), np.random.uniform(-np.pi, np.pi))
    if kind.startswith("generalized"):
        beta = _beta(*c[f"betag_range{stage}"])
        return rw.bivariate_generalized_gaussian(size, sx, sy, theta, beta, iso)
    if kind.startswith("plateau"):
        beta = _beta(*c[f"betap_range{stage}"])
        return rw.bivariate_plateau(size, sx, sy, theta, beta, iso)
    return rw.bivariate_gaussian(size, sx, sy, theta, iso)


def dataset_kernels(c):
    """``(kernel1, kernel2, sinc_kernel)`` of one image, 21×21 float32 tensors."""
    out = []
    for stage in ("", "2"):
        size = random.choice(c.kernel_sizes)
        if np.random.uniform() < c[f"sinc_prob{stage}"]:
            lo = np.pi / 3 if size < 13 else np.pi / 5
            kernel = rw.circular_lowpass_kernel(np.random.uniform(lo, np.pi), size)
        else:
            kernel = random_mixed_kernel(c, stage, size)
        pad = (21 - size) // 2
        out.append(np.pad(kernel, ((pad, pad), (pad, pad))))
    if np.random.uniform() < c.final_sinc_prob:
        size = random.choice(c.kernel_sizes)
        out.append(rw.circular_lowpass_kernel(np.random.uniform(np.pi / 3, np.pi), size, 21))
    else:
        pulse = np.zeros((21, 21))
        pulse[10, 10] = 1
        out.append(pulse)
    return [torch.from_numpy(k.astype(np.float32)) for k in out]


def gaussian_noise(img, sigma_range, gray_prob):
    b = img.size(0)
    sigma = torch.rand(b).view(b, 1, 1, 1) * (sigma_range[1] - sigma_range[0]) + sigma_range[0]
    gray = (torch.rand(b) < gray_prob).float().view(b, 1, 1, 1)
    colour = torch.randn(*img.size()) * sigma / 255.0
    grey = torch.randn(b, 1, *img.size()[2:]) * sigma / 255.0
    return torch.clamp(img + grey * gray + colour * (1 - gray), 0, 1)


def _poisson(img):
    img = torch.clamp((img * 255.0).round(), 0, 255) / 255.0
    vals = [2 ** np.ceil(np.log2(len(torch.unique(img[i])))) for i in range(img.size(0))]
    vals = img.new_tensor(vals).view(-1, 1, 1, 1)
    return torch.poisson(img * vals) / vals - img


def poisson_noise(img, scale_range, gray_prob):
    b = img.size(0)
    scale = torch.rand(b).view(b, 1, 1, 1) * (scale_range[1] - scale_range[0]) + scale_range[0]
    gray = (torch.rand(b) < gray_prob).float().view(b, 1, 1, 1)
    weights = torch.tensor([0.2989, 0.587, 0.114]).view(1, 3, 1, 1)
    grey = _poisson((img * weights).sum(1, keepdim=True)).expand_as(img)
    noise = _poisson(img) * (1 - gray) + grey * gray
    return torch.clamp(img + noise * scale, 0, 1)


def _noise(out, c, stage):
    if np.random.uniform() < c[f"gaussian_noise_prob{stage}"]:
        return gaussian_noise(out, c[f"noise_range{stage}"], c[f"gray_noise_prob{stage}"])
    return poisson_noise(out, c[f"poisson_scale_range{stage}"], c[f"gray_noise_prob{stage}"])


def _factor(c, stage):
    kind = random.choices(["up", "down", "keep"], c[f"resize_prob{stage}"])[0]
    lo, hi = c[f"resize_range{stage}"]
    return {"up": np.random.uniform(1, hi), "down": np.random.uniform(lo, 1), "keep": 1.0}[kind]


def _interp(x, mode, **kw):
    if mode != "area":
        kw["align_corners"] = False
    return F.interpolate(x, mode=mode, **kw)


def feed_data(gt, c, jpeg=None):
    """``RealESRGANModel.feed_data`` on an NCHW batch in [0, 1]: the LR batch.
    ``jpeg(img, quality)``: BasicSR's ``DiffJPEG(differentiable=False)`` (default
    :func:`diffjpeg`)."""
    jpeg = jpeg or diffjpeg
    b, _, h, w = gt.size()
    s = c.scale
    kernels = [dataset_kernels(c) for _ in range(b)]
    k1, k2, sinc = (torch.stack([k[i] for k in kernels]) for i in range(3))
    out = filter2d(usm_sharp(gt), k1)
    out = _interp(out, random.choice(["area", "bilinear", "bicubic"]), scale_factor=_factor(c, ""))
    out = _noise(out, c, "")
    out = jpeg(torch.clamp(out, 0, 1), torch.empty(b).uniform_(*c.jpeg_range))
    if np.random.uniform() < c.second_blur_prob:
        out = filter2d(out, k2)
    f = _factor(c, "2")
    size = (int(h / s * f), int(w / s * f))
    out = _interp(out, random.choice(["area", "bilinear", "bicubic"]), size=size)
    out = _noise(out, c, "2")
    lr = (h // s, w // s)
    if np.random.uniform() < 0.5:
        out = _interp(out, random.choice(["area", "bilinear", "bicubic"]), size=lr)
        out = filter2d(out, sinc)
        out = jpeg(torch.clamp(out, 0, 1), torch.empty(b).uniform_(*c.jpeg_range2))
    else:
        out = jpeg(torch.clamp(out, 0, 1), torch.empty(b).uniform_(*c.jpeg_range2))
        out = _interp(out, random.choice(["area", "bilinear", "bicubic"]), size=lr)
        out = filter2d(out, sinc)
    return torch.clamp((out * 255.0).round(), 0, 255) / 255.0


def seed(n: int) -> None:
    random.seed(n)
    np.random.seed(n)
    torch.manual_seed(n)
