"""ESRGAN stage 2: GAN losses by hand, the discriminator, the GAN task, interpolation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import recipe_config

from jaxsr.errors import UserError
from jaxsr.losses.gan import (
    bce_with_logits,
    gan_loss,
    ragan_discriminator_losses,
    ragan_generator_loss,
)
from jaxsr.models.discriminator import VGGStyleDiscriminator


def bce(x, t):
    p = 1 / (1 + math.exp(-x))
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def test_bce_and_simple_gan_losses_by_hand():
    x = jnp.array([-2.0, 0.5, 3.0])
    assert float(bce_with_logits(x, 1.0)) == pytest.approx(
        np.mean([bce(v, 1) for v in x]), abs=1e-6
    )
    assert float(bce_with_logits(x, 0.0)) == pytest.approx(
        np.mean([bce(v, 0) for v in x]), abs=1e-6
    )
    assert float(gan_loss("lsgan", x, True)) == pytest.approx(np.mean((np.array(x) - 1) ** 2))
    assert float(gan_loss("lsgan", x, False)) == pytest.approx(np.mean(np.array(x) ** 2))
    # hinge: D real mean(relu(1 - x)), D fake mean(relu(1 + x)), G -mean(x)
    assert float(gan_loss("hinge", x, True, is_disc=True)) == pytest.approx((3 + 0.5 + 0) / 3)
    assert float(gan_loss("hinge", x, False, is_disc=True)) == pytest.approx((0 + 1.5 + 4) / 3)
    assert float(gan_loss("hinge", x, True)) == pytest.approx(-1.5 / 3)
    with pytest.raises(ValueError, match="Unknown GAN loss"):
        gan_loss("relativistic", x, True)


def test_ragan_losses_by_hand():
    real = np.array([1.0, 2.0])
    fake = np.array([-1.0, 0.5])
    rm, fm = real.mean(), fake.mean()
    g = 0.5 * (np.mean([bce(r - fm, 0) for r in real]) + np.mean([bce(f - rm, 1) for f in fake]))
    d_real = 0.5 * np.mean([bce(r - fm, 1) for r in real])
    d_fake = 0.5 * np.mean([bce(f - rm, 0) for f in fake])
    assert float(ragan_generator_loss(jnp.array(real), jnp.array(fake))) == pytest.approx(
        g, abs=1e-6
    )
    got = ragan_discriminator_losses(jnp.array(real), jnp.array(fake))
    assert (float(got[0]), float(got[1])) == pytest.approx((d_real, d_fake), abs=1e-6)
    # The means are detached: the G gradient w.r.t. fake logits is only the direct term.
    grad = jax.grad(lambda f: ragan_generator_loss(jnp.array(real), f))(jnp.array(fake))
    direct = [0.5 * (1 / (1 + math.exp(-(f - rm))) - 1) / 2 for f in fake]
    np.testing.assert_allclose(np.asarray(grad), direct, atol=1e-6)


def test_discriminator_parameter_count():
    shapes = jax.eval_shape(
        lambda: VGGStyleDiscriminator().init(
            jax.random.key(0), jnp.zeros((1, 128, 128, 3)), train=False
        )
    )
    count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))
    assert count == 14_499_401


def gan_config(**overrides):
    return recipe_config("esrgan", "tiny", **overrides)


@pytest.mark.slow
def test_esrgan_tiny_trains_from_a_psnr_run_and_reports_perceptual(
    tmp_path, capsys, trained_workdir
):
    from jaxsr.tasks import make_task
    from jaxsr.train.loop import train_and_evaluate

    psnr_dir, psnr_params = trained_workdir
    config = gan_config(init_from=psnr_dir, num_train_steps=2, checkpoint_every=1, log_every=1)
    # G's learning rate 0: after the steps G must still equal the PSNR model exactly,
    # while D (lr 1e-3) trains.
    config.optim.lr = 0.0
    state = train_and_evaluate(config, str(tmp_path / "gan"))
    np.testing.assert_array_equal(
        np.asarray(state.params["g"]["conv_last"]["kernel"]),
        np.asarray(psnr_params["g"]["conv_last"]["kernel"]),
    )
    assert set(state.params) == {"g", "d"} and "d" in state.batch_stats
    assert "Final eval" in capsys.readouterr().out
    # D learned, and its BatchNorm statistics (mean 0 / var 1 at init) all moved.
    initial = make_task(config).init(jax.random.key(0))
    changed = lambda a, b: not np.allclose(np.asarray(a), np.asarray(b))  # noqa: E731
    assert any(jax.tree.leaves(jax.tree.map(changed, state.params["d"], initial.params["d"])))
    moved = jax.tree.map(changed, state.batch_stats["d"], initial.batch_stats["d"])
    assert all(jax.tree.leaves(moved)), moved


@pytest.mark.slow
def test_init_from_a_different_architecture_is_a_clear_error(tmp_path, trained_workdir):
    from jaxsr.train.loop import train_and_evaluate

    config = gan_config(init_from=trained_workdir[0])
    config.model.num_feat = 12
    with pytest.raises(UserError, match="match config.model/scale"):
        train_and_evaluate(config, str(tmp_path / "gan"))


def test_interpolation_endpoints_are_exact_and_mismatch_is_listed(tmp_path, capsys):
    from jaxsr.interpolate import main as interp_main
    from jaxsr.models import RRDBNet
    from jaxsr.saved_model import load_model_description, save_model

    kw = dict(scale=4, num_feat=8, num_block=1, num_grow_ch=4)
    va = RRDBNet(**kw).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    vb = RRDBNet(**kw).init(jax.random.key(1), jnp.zeros((1, 8, 8, 3)))
    save_model(str(tmp_path / "a"), "rrdbnet", kw, va)
    save_model(str(tmp_path / "b"), "rrdbnet", kw, vb)
    for alpha, ref in ((0.0, va), (1.0, vb)):
        assert (
            interp_main(
                [
                    f"--a={tmp_path / 'a'}",
                    f"--b={tmp_path / 'b'}",
                    f"--alpha={alpha}",
                    f"--out={tmp_path / 'o'}",
                    "--overwrite",  # the second pass replaces the first
                ]
            )
            == 0
        )
        got = load_model_description(str(tmp_path / "o"))[2]
        for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert (
        interp_main(
            [
                f"--a={tmp_path / 'a'}",
                f"--b={tmp_path / 'b'}",
                "--alpha=0.25",
                f"--out={tmp_path / 'o'}",
                "--overwrite",
            ]
        )
        == 0
    )
    got = load_model_description(str(tmp_path / "o"))[2]
    k = ("params", "conv_first", "kernel")
    want = 0.75 * np.asarray(va["params"]["conv_first"]["kernel"]) + 0.25 * np.asarray(
        vb["params"]["conv_first"]["kernel"]
    )
    np.testing.assert_allclose(got[k[0]][k[1]][k[2]], want, atol=1e-7)
    # A different width: every differing leaf is named.
    kw2 = {**kw, "num_feat": 12}
    vc = RRDBNet(**kw2).init(jax.random.key(2), jnp.zeros((1, 8, 8, 3)))
    from jaxsr.interpolate import interpolate

    with pytest.raises(
        UserError,
        match=r"differ in 29 parameter\(s\): .*rdb1.*conv1.*\(3, 3, 8, 4\) vs \(3, 3, 12, 4\)",
    ):
        interpolate(va, vc, 0.5)
    save_model(str(tmp_path / "c"), "rrdbnet", kw2, vc)
    assert (
        interp_main(
            [
                f"--a={tmp_path / 'a'}",
                f"--b={tmp_path / 'c'}",
                "--alpha=0.5",
                f"--out={tmp_path / 'o2'}",
            ]
        )
        == 2
    )
    assert "same architecture" in capsys.readouterr().err
