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
from realesrgan_torch import TorchSRVGG, TorchUNetD  # noqa: E402


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

        # --denoise_strength: the official dni of the model and its weak-denoise twin.
        torch.manual_seed(1)
        wdn = TorchSRVGG(8, 3, upscale, act_type).eval()
        torch.save({"params": wdn.state_dict()}, tmp_path / "wdn.pth")
        convert(str(tmp_path / "wdn.pth"), str(tmp_path / "wdn"))
        s = 0.3
        mixed = TorchSRVGG(8, 3, upscale, act_type).eval()
        a, b = ref.state_dict(), wdn.state_dict()
        mixed.load_state_dict({k: s * a[k] + (1 - s) * b[k] for k in a})
        photo = np.random.default_rng(2).integers(
            0, 256, (10, 10, 3), np.uint8
        )  # one tile, unpadded
        write_image(str(tmp_path / "rgb" / "photo.png"), photo)
        flags = ["--tile=0", f"--denoise_strength={s}", f"--wdn_model={tmp_path / 'wdn'}"]
        for name, extra in (("plain", []), ("dn", flags)):
            inputs = [f"--model={tmp_path / 'm'}", f"--input={tmp_path / 'rgb'}", "--tile=0"]
            assert upscale_main([*inputs, f"--output={tmp_path / name}", *extra]) == 0
        plain, got = (
            read_image(str(tmp_path / n / f"photo_x{upscale}.png")).pixels.astype(np.float64)
            for n in ("plain", "dn")
        )
        x = torch.from_numpy(photo.transpose(2, 0, 1)[None] / 255.0).float()
        with torch.no_grad():
            want = mixed(x).clamp(0, 1).numpy()[0].transpose(1, 2, 0)
        assert np.abs(got - np.round(want * 255)).max() <= 1
        assert np.abs(got - plain).max() > 2  # the blend changed it


def test_parameter_counts_of_the_releases():
    def count(num_conv):
        v = SRVGGNetCompact(num_conv=num_conv).init(jax.random.key(0), jnp.zeros((1, 4, 4, 3)))
        return sum(x.size for x in jax.tree.leaves(v))

    ref = lambda n: sum(p.numel() for p in TorchSRVGG(64, n, 4, "prelu").parameters())  # noqa: E731
    assert count(16) == ref(16) == 621_424  # realesr-animevideov3
    assert count(32) == ref(32) == 1_213_296  # realesr-general-x4v3


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


def test_missing_and_extra_tensors_are_named(tmp_path):
    """Issue 38, item 16: a missing SRVGG or U-Net tensor was "unrecognised layout" or
    "do not fit"; extra U-Net keys were ignored."""
    from jaxsr.convert.official import convert
    from jaxsr.errors import UserError

    srvgg = TorchSRVGG(8, 2, 4, "prelu").state_dict()
    del srvgg["body.3.weight"]
    torch.save(srvgg, tmp_path / "s.pth")
    with pytest.raises(UserError, match=r"missing body\.3\.weight"):
        convert(str(tmp_path / "s.pth"), str(tmp_path / "a"))
    d = TorchUNetD(4).state_dict()
    del d["conv3.weight_u"]
    torch.save(d, tmp_path / "d.pth")
    with pytest.raises(UserError, match=r"missing conv3\.weight_u"):
        convert(str(tmp_path / "d.pth"), str(tmp_path / "b"))
    d = {**TorchUNetD(4).state_dict(), "conv10.weight": torch.zeros(1)}
    torch.save(d, tmp_path / "e.pth")
    with pytest.raises(UserError, match=r"unexpected conv10\.weight"):
        convert(str(tmp_path / "e.pth"), str(tmp_path / "c"))
