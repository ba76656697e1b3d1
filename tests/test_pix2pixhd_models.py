"""pix2pixHD networks: parity with PyTorch references written from the spec, through the
checkpoint converter; the transposed-conv equivalence; label/instance encodings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from pix2pixhd_torch import Encoder as TorchEncoder
from pix2pixhd_torch import GlobalGenerator as TorchGlobal
from pix2pixhd_torch import LocalEnhancer as TorchLocal
from pix2pixhd_torch import MultiscaleDiscriminator as TorchD
from pix2pixhd_torch import init_normal

from jaxsr.convert.official import convert
from jaxsr.errors import UserError
from jaxsr.models.layers import conv_transpose_dilated, conv_transpose_subpixel
from jaxsr.ops.labels import dense_instance_ids, instance_edges
from jaxsr.saved_model import load_model


def _nhwc(t):
    return jnp.asarray(t.detach().numpy().transpose(0, 2, 3, 1))


def _convert(net, tmp_path, name="latest_net_G.pth"):
    path = str(tmp_path / name)
    torch.save(net.state_dict(), path)  # bare state dict, as the official checkpoints
    desc = convert(path, str(tmp_path / "m"))
    return desc, *load_model(str(tmp_path / "m"))


def _label_input(n, c, h, w, seed=0):
    """An official-style G input: one-hot labels + an edge channel."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, c - 1, (n, h // 4, w // 4), generator=g)
    label = label.repeat_interleave(4, 1).repeat_interleave(4, 2)
    x = torch.nn.functional.one_hot(label, c - 1).permute(0, 3, 1, 2).float()
    edge = torch.rand(n, 1, h, w, generator=g) > 0.8
    return torch.cat([x, edge.float()], 1)


def test_global_generator_matches_torch(tmp_path):
    net = init_normal(TorchGlobal(9, 3, ngf=4, n_down=4, n_blocks=2)).eval()
    desc, module, variables = _convert(net, tmp_path)
    assert "GlobalGenerator" in desc and module.n_blocks == 2 and module.n_downsampling == 4
    x = _label_input(2, 9, 48, 64)
    with torch.no_grad():
        want = net(x)
    got = module.apply(variables, _nhwc(x))
    np.testing.assert_allclose(np.asarray(got), _nhwc(want), atol=1e-4)


@pytest.mark.parametrize("n_local", [1, 2])
def test_local_enhancer_matches_torch(tmp_path, n_local):
    net = init_normal(
        TorchLocal(6, 3, ngf=4, n_down=2, n_blocks=1, n_local=n_local, n_blocks_local=2)
    )
    desc, module, variables = _convert(net.eval(), tmp_path)
    assert "LocalEnhancer" in desc and module.n_local_enhancers == n_local
    assert module.n_blocks_local == 2 and module.ngf == 4
    x = _label_input(1, 6, 32, 48, seed=1)
    with torch.no_grad():
        want = net(x)
    got = module.apply(variables, _nhwc(x))
    np.testing.assert_allclose(np.asarray(got), _nhwc(want), atol=1e-4)


@pytest.mark.parametrize("num_d,feature_keys", [(2, True), (3, True), (2, False)])
def test_multiscale_discriminator_matches_torch_every_scale_and_layer(
    tmp_path, num_d, feature_keys
):
    net = init_normal(TorchD(7, ndf=8, n_layers=3, num_D=num_d, feature_keys=feature_keys))
    desc, module, variables = _convert(net, tmp_path, "latest_net_D.pth")
    assert f"num_D {num_d}" in desc
    x = torch.randn(2, 7, 40, 56)
    with torch.no_grad():
        want = net(x)
    got = module.apply(variables, _nhwc(x))
    assert len(got) == num_d and all(len(s) == 5 for s in got)
    for scale_got, scale_want in zip(got, want, strict=True):  # index 0 = full resolution
        for g, w in zip(scale_got, scale_want, strict=True):
            np.testing.assert_allclose(np.asarray(g), _nhwc(w), atol=1e-4)


def test_encoder_instance_pooling_matches_torch_for_cityscapes_and_small_ids(tmp_path):
    net = init_normal(TorchEncoder(3, 3, ngf=4, n_down=3)).eval()
    desc, module, variables = _convert(net, tmp_path, "latest_net_E.pth")
    assert "Encoder" in desc
    rng = np.random.default_rng(0)
    small = np.zeros((2, 32, 40), np.int64)
    small[:, 4:20, 3:30] = 1
    small[0, 10:30, 20:38] = 2
    small[1, 0:8, 0:8] = 5
    cityscapes = np.choose(small, [7, 26001, 26002, 0, 0, 24000])  # stuff 7, cars, a person
    image = torch.from_numpy(rng.uniform(-1, 1, (2, 3, 32, 40)).astype(np.float32))
    for ids in (small, cityscapes):
        with torch.no_grad():
            want = net(image, torch.from_numpy(ids)[:, None])  # official (B, 1, H, W)
        got = module.apply(variables, _nhwc(image), jnp.asarray(ids, jnp.int32))
        np.testing.assert_allclose(np.asarray(got), _nhwc(want), atol=1e-4)
    too_many = np.arange(32 * 40).reshape(1, 32, 40)
    with pytest.raises(ValueError, match="max_instances"):
        module.apply(variables, _nhwc(image[:1]), too_many)


def test_converter_names_a_wrong_shaped_tensor(tmp_path):
    sd = init_normal(TorchGlobal(9, 3, ngf=4, n_down=2, n_blocks=1)).state_dict()
    sd["model.10.conv_block.1.weight"] = torch.zeros(16, 8, 3, 3)
    torch.save(sd, str(tmp_path / "g.pth"))
    with pytest.raises(UserError, match=r"model\.10\.conv_block\.1\.weight"):
        convert(str(tmp_path / "g.pth"), str(tmp_path / "m"))


def test_transposed_conv_subpixel_equals_dilated_and_torch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 7, 3)).astype(np.float32)
    w = rng.normal(size=(3, 4, 3, 3)).astype(np.float32)  # PyTorch (in, out, k, k)
    kernel = jnp.asarray(w.transpose(2, 3, 0, 1))
    sub = conv_transpose_subpixel(jnp.asarray(x), kernel)
    dil = conv_transpose_dilated(jnp.asarray(x), kernel)
    want = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x.transpose(0, 3, 1, 2)),
        torch.from_numpy(w),
        stride=2,
        padding=1,
        output_padding=1,
    )
    assert sub.shape == (2, 10, 14, 4)
    np.testing.assert_allclose(np.asarray(sub), np.asarray(dil), atol=1e-5)
    np.testing.assert_allclose(np.asarray(sub), _nhwc(want), atol=1e-5)
    # and their gradients (the reason for the sub-pixel form is its backward pass)
    f = lambda fn: jax.grad(lambda k: jnp.sum(fn(jnp.asarray(x), k) ** 2))(kernel)  # noqa: E731
    np.testing.assert_allclose(
        np.asarray(f(conv_transpose_subpixel)), np.asarray(f(conv_transpose_dilated)), rtol=1e-4
    )


def test_edge_map_on_a_hand_made_instance_map():
    inst = np.array(
        [
            [1, 1, 1, 2],
            [1, 1, 1, 2],
            [3, 3, 1, 2],
            [3, 3, 3, 3],
        ]
    )
    # Horizontal pairs that differ: (r0, c2|c3), (r1, c2|c3), (r2, c1|c2), (r2, c2|c3);
    # vertical: (r1|r2, c0), (r1|r2, c1), (r2|r3, c2), (r2|r3, c3). Both pixels marked.
    want = np.array(
        [
            [0, 0, 1, 1],
            [1, 1, 1, 1],
            [1, 1, 1, 1],
            [0, 0, 1, 1],
        ]
    )
    got = instance_edges(jnp.asarray(inst)[None])[0, ..., 0]
    np.testing.assert_array_equal(np.asarray(got), want)
    # invariant under renumbering, as the pipeline renumbers ids per image
    dense = dense_instance_ids(jnp.asarray(inst * 1000 + 7)[None], 8)
    np.testing.assert_array_equal(np.asarray(dense[0]), inst - 1)
