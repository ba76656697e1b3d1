"""RRDBNet: exact parameter count and parity with a PyTorch reference through the key maps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr.convert import rrdbnet_config, rrdbnet_params
from jaxsr.models import RRDBNet


def count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_default_parameter_count():
    shapes = jax.eval_shape(lambda: RRDBNet().init(jax.random.key(0), jnp.zeros((1, 8, 8, 3))))
    assert count(shapes["params"]) == 16_697_987


torch = pytest.importorskip("torch")
tnn = torch.nn
F = torch.nn.functional


class TorchRDB(tnn.Module):
    """Written from spec §1.1 (BasicSR names)."""

    def __init__(self, nf, gc):
        super().__init__()
        for j in range(1, 5):
            setattr(self, f"conv{j}", tnn.Conv2d(nf + (j - 1) * gc, gc, 3, 1, 1))
        self.conv5 = tnn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)

    def forward(self, x):
        feats = [x]
        for j in range(1, 5):
            feats.append(F.leaky_relu(getattr(self, f"conv{j}")(torch.cat(feats, 1)), 0.2))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x


class TorchRRDB(tnn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = TorchRDB(nf, gc), TorchRDB(nf, gc), TorchRDB(nf, gc)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class TorchRRDBNet(tnn.Module):
    def __init__(self, scale, nf, nb, gc):
        super().__init__()
        self.scale = scale
        in_ch = {4: 3, 2: 12, 1: 48}[scale]
        self.conv_first = tnn.Conv2d(in_ch, nf, 3, 1, 1)
        self.body = tnn.Sequential(*[TorchRRDB(nf, gc) for _ in range(nb)])
        self.conv_body = tnn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up1 = tnn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up2 = tnn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_hr = tnn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = tnn.Conv2d(nf, 3, 3, 1, 1)

    def forward(self, x):
        if self.scale == 2:
            x = F.pixel_unshuffle(x, 2)
        elif self.scale == 1:
            x = F.pixel_unshuffle(x, 4)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = F.leaky_relu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        feat = F.leaky_relu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


def esrgan_2019_keys(sd):
    """Rename BasicSR keys to the ESRGAN repo's 2019 scheme (spec §1.6, middle column)."""
    ren = {
        "conv_body": "trunk_conv",
        "conv_up1": "upconv1",
        "conv_up2": "upconv2",
        "conv_hr": "HRconv",
    }
    out = {}
    for k, v in sd.items():
        if k.startswith("body."):
            _, i, rdb, rest = k.split(".", 3)
            k = f"RRDB_trunk.{i}.RDB{rdb[-1]}.{rest}"
        else:
            head, rest = k.split(".", 1)
            k = f"{ren.get(head, head)}.{rest}"
        out[k] = v
    return out


def esrgan_2018_keys(sd, nb):
    """Rename to the 2018 sequential scheme (spec §1.6, left column)."""
    top = {
        "conv_first": "model.0",
        "conv_body": f"model.1.sub.{nb}",
        "conv_up1": "model.3",
        "conv_up2": "model.6",
        "conv_hr": "model.8",
        "conv_last": "model.10",
    }
    out = {}
    for k, v in sd.items():
        if k.startswith("body."):
            _, i, rdb, conv, p = k.split(".")
            k = f"model.1.sub.{i}.RDB{rdb[-1]}.{conv}.0.{p}"
        else:
            head, p = k.split(".")
            k = f"{top[head]}.{p}"
        out[k] = v
    return out


@pytest.mark.parametrize(
    "scale,scheme",
    [(4, "basicsr"), (4, "esrgan2019"), (4, "esrgan2018"), (2, "basicsr"), (1, "basicsr")],
)
def test_parity_with_torch(scale, scheme):
    torch.manual_seed(0)
    nf, nb, gc = 16, 2, 8
    ref = TorchRRDBNet(scale, nf, nb, gc).eval()
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    assert len(sd) == 2 * (15 * nb + 6)  # 5 convs x 3 RDBs per RRDB + 6 outer convs, w + b
    if scheme == "esrgan2019":
        sd = esrgan_2019_keys(sd)
    elif scheme == "esrgan2018":
        sd = esrgan_2018_keys(sd, nb)
    cfg = rrdbnet_config(sd)
    assert cfg == dict(
        scale=scale, num_feat=nf, num_block=nb, num_grow_ch=gc, num_in_ch=3, num_out_ch=3
    )
    model = RRDBNet(**cfg)
    params = rrdbnet_params(sd)
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, 16, 20)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    got = model.apply({"params": params}, jnp.asarray(x.transpose(0, 2, 3, 1)))
    assert got.shape == want.shape == (2, 16 * scale, 20 * scale, 3)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5, rtol=0)
    # Every converted leaf lands on a model parameter of the same shape and nothing is missing.
    init = model.init(jax.random.key(0), jnp.zeros((1, 16, 20, 3)))["params"]
    assert jax.tree.structure(init) == jax.tree.structure(params)
    assert jax.tree.map(np.shape, init) == jax.tree.map(np.shape, params)


def test_init_is_the_scaled_kaiming_of_basicsr():
    params = RRDBNet(num_feat=64, num_block=1).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))[
        "params"
    ]
    k = np.asarray(params["body_0"]["rdb1"]["conv5"]["kernel"])  # fan_in = 9 * 192
    assert np.std(k) == pytest.approx(0.1 * np.sqrt(2 / (9 * 192)), rel=0.05)
    assert not np.any(np.asarray(params["body_0"]["rdb1"]["conv5"]["bias"]))
    first = np.asarray(params["conv_first"]["kernel"])  # PyTorch default U(±1/sqrt(27))
    assert np.abs(first).max() <= 1 / np.sqrt(27) and np.abs(first).max() > 0.9 / np.sqrt(27)


def test_scanned_trunk_has_the_same_params_output_and_gradients():
    x = jax.random.uniform(jax.random.key(0), (2, 12, 12, 3))
    plain = RRDBNet(num_feat=8, num_block=3, num_grow_ch=4, remat=True)
    scanned = RRDBNet(num_feat=8, num_block=3, num_grow_ch=4, remat=True, scan_blocks=True)
    variables = plain.init(jax.random.key(1), x)
    # The same variable tree (per-block names), so checkpoints and converters fit both.
    assert jax.tree.structure(scanned.init(jax.random.key(1), x)) == jax.tree.structure(variables)
    np.testing.assert_allclose(scanned.apply(variables, x), plain.apply(variables, x), atol=1e-6)

    def grads(model):
        return jax.grad(lambda p: jnp.mean(model.apply({"params": p}, x) ** 2))(variables["params"])

    for a, b in zip(jax.tree.leaves(grads(scanned)), jax.tree.leaves(grads(plain)), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-7)
    # One RRDB is traced: the scanned program holds a single copy of the block's convs.
    hlo = jax.jit(scanned.apply).lower(variables, x).as_text()
    assert hlo.count("convolution(") < jax.jit(plain.apply).lower(variables, x).as_text().count(
        "convolution("
    )
