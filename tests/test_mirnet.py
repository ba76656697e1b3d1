"""MIRNet: exact architecture and weight sharing, official-checkpoint import, any input size."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from mirnet_torch import MIRNet as TorchMIRNet

from jaxsr.convert.official import convert
from jaxsr.errors import UserError
from jaxsr.models.mirnet import SKFF, MIRNet, antialiased_downsample
from jaxsr.saved_model import load_model


def count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_parameter_count_reproduces_the_official_sharing():
    v = jax.eval_shape(lambda: MIRNet().init(jax.random.key(0), jnp.zeros((1, 16, 16, 3))))
    assert count(v) == 31_787_419
    net = TorchMIRNet()
    assert sum(p.numel() for p in net.parameters()) == 31_787_419  # unique tensors
    sd = net.state_dict()
    assert len(sd) == 797  # the released checkpoints' key count (spec §3.7)
    unshared = sum(t.numel() for k, t in sd.items() if not k.endswith("filt"))
    assert round(unshared / 1e6, 2) == 42.24  # what a naive re-implementation would have


def _randomised(net):
    torch.manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.PReLU):  # includes the one shared by all DAUs
                m.weight.uniform_(0.05, 0.4)
    return net.eval()


def _save_official(net, path):
    """As released: {'epoch', 'state_dict' with 'module.' prefixes, 'optimizer'}."""
    sd = {f"module.{k}": v for k, v in net.state_dict().items()}
    torch.save(
        {"epoch": 60, "state_dict": sd, "optimizer": {"state": {}, "param_groups": []}}, path
    )


@pytest.mark.parametrize("n,n_rrg,n_mrb,size", [(16, 2, 2, (36, 28)), (8, 1, 1, (21, 30))])
def test_imported_mirnet_matches_torch(tmp_path, n, n_rrg, n_mrb, size):
    torch.manual_seed(n)
    net = _randomised(TorchMIRNet(n, n_rrg, n_mrb))
    _save_official(net, str(tmp_path / "model_best.pth"))
    assert "MIRNet" in convert(str(tmp_path / "model_best.pth"), str(tmp_path / "m"))
    module, variables = load_model(str(tmp_path / "m"))
    assert count(variables) == sum(p.numel() for p in net.parameters())
    x = torch.rand(2, 3, *size)
    h, w = size
    ph, pw = -h % 4, -w % 4  # the official test pads to a multiple of 4 by reflection
    with torch.no_grad():
        want = net(torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect"))[:, :, :h, :w]
    got = module.apply(variables, jnp.asarray(x.numpy().transpose(0, 2, 3, 1)))
    assert got.shape == (2, h, w, 3)
    np.testing.assert_allclose(np.asarray(got), want.numpy().transpose(0, 2, 3, 1), atol=1e-4)


def test_unshared_copies_are_refused(tmp_path):
    net = _randomised(TorchMIRNet(8, 1, 1))
    sd = net.state_dict()
    key = next(k for k in sd if k.endswith("blocks.0.1.conv1x1.weight"))
    sd[key] = sd[key] + 1.0  # column 1 no longer the same DAU as column 0
    torch.save(sd, str(tmp_path / "bad.pth"))
    with pytest.raises(UserError, match="shares them"):
        convert(str(tmp_path / "bad.pth"), str(tmp_path / "m"))


def test_skff_attention_is_a_softmax_across_streams():
    streams = [jnp.full((1, 4, 4, 8), v) for v in (1.0, 2.0, 3.0)]
    skff = SKFF(8)
    variables = skff.init(jax.random.key(0), streams)
    out = skff.apply(variables, streams)
    assert out.shape == (1, 4, 4, 8)
    # Constant streams: the output is a convex combination of 1, 2 and 3 per channel.
    assert jnp.all((out >= 1.0) & (out <= 3.0))
    same = [jnp.full((1, 4, 4, 8), 5.0)] * 3
    np.testing.assert_allclose(np.asarray(skff.apply(variables, same)), 5.0, rtol=1e-6)


def test_antialiased_downsample_is_the_binomial_blur():
    x = np.random.default_rng(0).uniform(size=(1, 6, 8, 2)).astype(np.float32)
    got = np.asarray(antialiased_downsample(jnp.asarray(x)))
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    k = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    want = np.zeros((1, 3, 4, 2))
    for i in range(3):
        for j in range(4):
            want[0, i, j] = np.einsum("hwc,hw->c", xp[0, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3], k)
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (4, 4), (13, 10)])
def test_any_input_size_gives_the_same_size(size):
    model = MIRNet(n_feat=8, n_rrg=1, n_mrb=1)
    x = jnp.ones((1, *size, 3)) * 0.5
    variables = model.init(jax.random.key(0), x)
    assert model.apply(variables, x).shape == (1, *size, 3)


def test_self_ensemble_inverts_every_transform():
    from jaxsr.ops.ensemble import dihedral, inverse_dihedral, self_ensemble

    x = jnp.arange(2 * 3 * 5 * 1, dtype=jnp.float32).reshape(2, 3, 5, 1)
    seen = {np.asarray(dihedral(x, k)).tobytes() for k in range(8)}
    assert len(seen) == 8  # eight distinct transforms
    for k in range(8):
        np.testing.assert_array_equal(inverse_dihedral(dihedral(x, k), k), x)
    # An equivariant model (here ×2 nearest upsampling) is unchanged by the ensemble.
    up = lambda v, t: jnp.repeat(jnp.repeat(t, 2, 1), 2, 2)  # noqa: E731
    np.testing.assert_allclose(self_ensemble(up)(None, x), up(None, x))


@pytest.mark.slow
def test_tiny_denoiser_trains_evaluates_and_restores_files(tmp_path, capsys):
    from conftest import recipe_config

    from jaxsr.data.images import read_image, write_image
    from jaxsr.evaluate import main as evaluate_main
    from jaxsr.train.loop import train_and_evaluate
    from jaxsr.upscale import main as upscale_main

    workdir = str(tmp_path / "run")
    train_and_evaluate(recipe_config("mirnet", "tiny"), workdir)
    out = capsys.readouterr().out
    assert "PSNR on RGB, border 0; model / input" in out and "Model vs input: noise σ=25" in out
    small = tmp_path / "set"
    write_image(
        str(small / "a.png"), np.random.default_rng(1).integers(0, 256, (32, 40, 3), np.uint8)
    )
    assert (
        evaluate_main(
            [
                f"--model={workdir}",
                f"--data={small}",
                "--noise_sigma=25",
                "--rgb",
                "--crop_border=0",
                "--self_ensemble",
            ]
        )
        == 0
    )
    assert "noise σ=25" in capsys.readouterr().out
    photo = np.random.default_rng(0).integers(0, 256, (37, 29, 3), dtype=np.uint8)
    write_image(str(tmp_path / "in" / "photo.png"), photo)
    assert (
        upscale_main(
            [
                f"--model={workdir}",
                f"--input={tmp_path / 'in'}",
                f"--output={tmp_path / 'out'}",
                "--tile=16",
                "--tile_overlap=4",
            ]
        )
        == 0
    )
    assert read_image(str(tmp_path / "out" / "photo_x1.png")).pixels.shape == (37, 29, 3)


def test_restoration_config_errors_are_clear():
    from conftest import recipe_config

    from jaxsr.tasks import make_task

    with pytest.raises(UserError, match="restoration.kind"):
        make_task(recipe_config("mirnet", "tiny", **{"restoration.kind": "blur"}))
    with pytest.raises(UserError, match="lr_dir"):
        make_task(recipe_config("mirnet", "tiny", **{"restoration.kind": "paired"}))


def test_sr_input_is_degraded_everywhere_and_keeps_the_size():
    from jaxsr.eval.protocols import UpsampledLR

    hr = np.random.default_rng(0).integers(0, 256, (30, 27, 3), dtype=np.uint8)
    lq = UpsampledLR(4).apply(hr, scale=1)
    assert lq.shape == hr.shape and lq.dtype == np.uint8
    assert np.mean(lq[-2:] == hr[-2:]) < 0.2  # the rows past the ×4 grid are degraded too
