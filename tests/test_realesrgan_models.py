"""Real-ESRGAN's networks against PyTorch modules written here from the official
``srvgg_arch.py`` and BasicSR's ``UNetDiscriminatorSN`` (with ``torch.nn.utils.
spectral_norm``): official-layout ``.pth`` files through ``jaxsr.convert`` and
``jaxsr.load_model``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsr
from jaxsr.models.srvgg import SRVGGNetCompact

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


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


@pytest.mark.parametrize("act_type,upscale", [("prelu", 4), ("relu", 2)])
def test_official_layout_converts_loads_and_matches_torch(tmp_path, act_type, upscale):
    from jaxsr.convert.official import convert

    torch.manual_seed(0)
    ref = TorchSRVGG(8, 3, upscale, act_type).eval()
    with torch.no_grad():  # PReLU slopes away from their 0.25 init, so each one counts
        for m in ref.modules():
            if isinstance(m, nn.PReLU):
                m.weight.uniform_(-0.5, 0.5)
    src = tmp_path / "realesr-tiny.pth"
    torch.save({"params": ref.state_dict(), "params_ema": ref.state_dict()}, src)
    line = convert(str(src), str(tmp_path / "m"))
    assert "SRVGGNetCompact" in line
    module, variables = jaxsr.load_model(str(tmp_path / "m"))
    assert isinstance(module, SRVGGNetCompact)
    assert (module.num_conv, module.num_feat, module.upscale, module.act_type) == (
        3,
        8,
        upscale,
        act_type,
    )
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, 12, 10)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    got = module.apply(variables, jnp.asarray(x.transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5, rtol=0)
    # The converted tree is exactly the module's.
    init = module.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    assert jax.tree.map(np.shape, init) == jax.tree.map(np.shape, variables)
    if act_type == "prelu":  # and upscales files, tile by tile, like any model
        from jaxsr.data.images import read_image, write_image
        from jaxsr.upscale import main as upscale_main

        grey = np.random.default_rng(1).integers(0, 256, (21, 17), np.uint8)
        write_image(str(tmp_path / "in" / "grey.png"), grey)
        args = [f"--model={tmp_path / 'm'}", f"--input={tmp_path / 'in'}"]
        assert (
            upscale_main([*args, f"--output={tmp_path / 'out'}", "--tile=8", "--tile_overlap=2"])
            == 0
        )
        out = read_image(str(tmp_path / "out" / f"grey_x{upscale}.png")).pixels
        assert out.shape[:2] == (21 * upscale, 17 * upscale)


def test_parameter_counts_of_the_releases():
    def count(num_conv):
        v = SRVGGNetCompact(num_conv=num_conv).init(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))
        return sum(x.size for x in jax.tree.leaves(v))

    ref = lambda n: sum(p.numel() for p in TorchSRVGG(64, n, 4, "prelu").parameters())  # noqa: E731
    assert count(16) == ref(16) == 621_424  # realesr-animevideov3
    assert count(32) == ref(32) == 1_213_296  # realesr-general-x4v3


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


def test_unet_discriminator_converts_and_matches_torch_in_eval_and_train_mode(tmp_path):
    from jaxsr.convert.official import convert
    from jaxsr.models.unet_discriminator import UNetDiscriminatorSN

    torch.manual_seed(0)
    ref = TorchUNetD(8)
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, 24, 16)).astype(np.float32)
    with torch.no_grad():  # a few training-mode calls: u and v away from their init
        for _ in range(3):
            ref(torch.from_numpy(x))
    torch.save({"params": ref.state_dict()}, tmp_path / "netD.pth")
    assert "UNetDiscriminatorSN" in convert(str(tmp_path / "netD.pth"), str(tmp_path / "d"))
    module, variables = jaxsr.load_model(str(tmp_path / "d"))
    assert isinstance(module, UNetDiscriminatorSN) and set(variables) == {"params", "spectral"}
    xj = jnp.asarray(x.transpose(0, 2, 3, 1))

    ref.eval()  # evaluation: the stored u, v
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    got = module.apply(variables, xj, train=False)
    assert got.shape == (2, 24, 16, 1)
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5, rtol=1e-5)

    ref.train()  # training: one power iteration per call, u and v kept
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    got, updated = module.apply(variables, xj, train=True, mutable=["spectral"])
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5, rtol=1e-5)
    for i in range(1, 9):
        conv = getattr(ref, f"conv{i}")
        for name in ("u", "v"):
            np.testing.assert_allclose(
                np.asarray(updated["spectral"][f"conv{i}"][name]),
                getattr(conv, f"weight_{name}").numpy(),
                atol=1e-5,
                err_msg=f"conv{i}.weight_{name}",
            )

    # No gradient through u and v; the kernels get theirs.
    def loss(params):
        out, _ = module.apply({**variables, "params": params}, xj, mutable=["spectral"])
        return jnp.mean(out)

    grads = jax.grad(loss)(variables["params"])
    assert all(np.isfinite(g).all() and np.abs(g).sum() > 0 for g in jax.tree.leaves(grads))


def test_unet_discriminator_parameter_count():
    from jaxsr.models.unet_discriminator import UNetDiscriminatorSN

    v = UNetDiscriminatorSN().init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
    trainable = sum(x.size for x in jax.tree.leaves(v["params"]))
    assert trainable == sum(p.numel() for p in TorchUNetD(64).parameters()) == 4_376_897
