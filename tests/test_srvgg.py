"""SRVGGNetCompact (Real-ESRGAN's compact generator) against a PyTorch module written
here from the official ``srvgg_arch.py``: an official-layout ``.pth`` (``params`` /
``params_ema``) through ``jaxsr.convert`` and ``jaxsr.load_model``."""

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
