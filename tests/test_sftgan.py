"""SFTGAN (spec §5.3): parity with PyTorch modules written from the spec, through the
converter; the auxiliary-classifier discriminator; parameter counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from sftgan_torch import ACDDiscriminator as TorchACD
from sftgan_torch import SFTNet as TorchSFTNet

from jaxsr.convert.common import conv_kernel, dense_kernel
from jaxsr.convert.official import convert
from jaxsr.errors import UserError
from jaxsr.models.sftgan import ACDDiscriminator, SFTNet
from jaxsr.saved_model import load_model
from jaxsr.trees import flatten_paths, nest


def _nhwc(t):
    return jnp.asarray(t.detach().numpy().transpose(0, 2, 3, 1))


def _prior(n, h, w, k=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(n, k, h, w, generator=g), 1)


def test_sftgan_generator_matches_torch_through_the_converter(tmp_path):
    torch.manual_seed(0)
    net = TorchSFTNet(nf=16, nb=3).eval()
    # Larger-than-default weights in the SFT/Cond convs so the modulation matters.
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "SFT" in name or "Cond" in name:
                p.mul_(3)
    torch.save(net.state_dict(), tmp_path / "SFTGAN_bicx4_noBN_OST_bg.pth")
    desc = convert(str(tmp_path / "SFTGAN_bicx4_noBN_OST_bg.pth"), str(tmp_path / "m"))
    assert "SFTGAN ×4 (3 ResBlock_SFT, 16 features, 8-class prior)" in desc
    module, variables = load_model(str(tmp_path / "m"))
    lq = torch.rand(2, 3, 12, 10)
    seg = _prior(2, 48, 40)
    with torch.no_grad():
        want = net((lq, seg))
    got = module.apply(variables, _nhwc(lq), _nhwc(seg))
    np.testing.assert_allclose(np.asarray(got), _nhwc(want), atol=1e-4)
    # The prior changes the output (the SFT path is live, not bypassed).
    other = module.apply(variables, _nhwc(lq), _nhwc(_prior(2, 48, 40, seed=1)))
    assert float(jnp.abs(other - got).mean()) > 1e-3


def test_official_generator_size():
    shapes = jax.eval_shape(
        SFTNet().init, jax.random.key(0), jnp.zeros((1, 8, 8, 3)), jnp.zeros((1, 32, 32, 8))
    )
    assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes)) == 1_833_763
    want = sum(p.numel() for p in TorchSFTNet().parameters())
    assert want == 1_833_763


def test_wrong_prior_shape_is_a_clear_error():
    module = SFTNet(num_feat=8, num_block=1)
    with pytest.raises(ValueError, match=r"HR-size class probabilities"):
        module.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), jnp.zeros((1, 8, 8, 8)))


def test_converter_names_a_missing_tensor(tmp_path):
    sd = TorchSFTNet(nf=8, nb=2).state_dict()
    del sd["sft_branch.1.sft1.SFT_shift_conv1.bias"]
    torch.save(sd, tmp_path / "g.pth")
    with pytest.raises(UserError, match="sft_branch_1/sft1/SFT_shift_conv1/bias is missing"):
        convert(str(tmp_path / "g.pth"), str(tmp_path / "m"))


def _acd_params(net):
    """Torch ACD state dict -> jaxsr variables (the discriminator has no released
    weights, so this mapping lives in the test: Sequential index -> ``feature_{i}``)."""
    params, stats = {}, {}
    for key, v in net.state_dict().items():
        v = v.numpy().copy()  # torch updates BatchNorm buffers in place
        head, idx, leaf = key.split(".")
        name = f"{head}_{idx}"
        if leaf in ("running_mean", "running_var"):
            stats[(name, {"running_mean": "mean", "running_var": "var"}[leaf])] = v
        elif leaf == "num_batches_tracked":
            continue
        elif v.ndim == 1 and isinstance(
            net.feature[int(idx)] if head == "feature" else None, torch.nn.BatchNorm2d
        ):
            params[(name, {"weight": "scale", "bias": "bias"}[leaf])] = v
        elif leaf == "weight":
            params[(name, "kernel")] = conv_kernel(v) if v.ndim == 4 else dense_kernel(v)
        else:
            params[(name, "bias")] = v
    return {"params": nest(params), "batch_stats": nest(stats)}


def test_acd_discriminator_matches_torch_in_train_and_eval_mode():
    torch.manual_seed(0)
    net = TorchACD(nf=8)
    x = torch.rand(3, 3, 96, 96)
    variables = _acd_params(net)
    module = ACDDiscriminator(num_feat=8)
    want_shapes = jax.eval_shape(
        lambda: module.init(jax.random.key(0), jnp.zeros((1, 96, 96, 3)), train=False)
    )
    assert {p: v.shape for p, v in flatten_paths(want_shapes).items()} == {
        p: np.shape(v) for p, v in flatten_paths(variables).items()
    }
    net.train()
    gan_t, cls_t = net(x)
    (gan, cls), updates = module.apply(variables, _nhwc(x), train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(np.asarray(gan), gan_t.detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(np.asarray(cls), cls_t.detach().numpy(), atol=1e-4)
    # Running statistics update as PyTorch's (momentum 0.1, unbiased variance).
    new = _acd_params(net)["batch_stats"]
    for path, v in flatten_paths(new).items():
        got = flatten_paths(updates["batch_stats"])[path]
        np.testing.assert_allclose(np.asarray(got), v, atol=1e-4, rtol=1e-4)
    net.eval()
    variables = {**variables, "batch_stats": new}
    gan_t, cls_t = net(x)
    gan, cls = module.apply(variables, _nhwc(x), train=False)
    np.testing.assert_allclose(np.asarray(gan), gan_t.detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(np.asarray(cls), cls_t.detach().numpy(), atol=1e-4)
    assert cls.shape == (3, 8)


def test_acd_discriminator_size():
    shapes = jax.eval_shape(
        lambda: ACDDiscriminator().init(jax.random.key(0), jnp.zeros((1, 96, 96, 3)), train=False)
    )
    n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))
    assert n == 10_813_717 == sum(p.numel() for p in TorchACD().parameters())


def test_evaluate_and_upscale_cli_with_a_prior_conditioned_model(tmp_path, capsys):
    from jaxsr import evaluate, upscale

    torch.manual_seed(0)
    torch.save(TorchSFTNet(nf=8, nb=1).state_dict(), tmp_path / "g.pth")
    convert(str(tmp_path / "g.pth"), str(tmp_path / "m"))
    out = tmp_path / "eval.json"
    args = [f"--model={tmp_path / 'm'}", "--data=builtin", f"--out={out}"]
    assert evaluate.main(args) == 2
    assert "--segmenter=builtin_clusters" in capsys.readouterr().err
    assert evaluate.main([*args, "--segmenter=builtin_clusters"]) == 0
    assert out.exists() and "builtin" in capsys.readouterr().out
    rc = upscale.main([f"--model={tmp_path / 'm'}", f"--input={out}", f"--output={tmp_path}/o"])
    assert rc == 2 and "segmentation prior" in capsys.readouterr().err
