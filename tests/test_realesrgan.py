"""Real-ESRGAN's training: the training-pair pool against the official algorithm written
here, the recipe's checks, and RealESRNet with the compact network from recipe to an
exported model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import recipe_config

import jaxsr
from jaxsr.errors import UserError
from jaxsr.methods import task_class
from jaxsr.tasks.realesrgan import pool_exchange
from jaxsr.train import loop


def _official_pool(size, batches, perms):
    """``RealESRGANModel._dequeue_and_enqueue`` on NumPy arrays: fill the queue batch by
    batch; once full, shuffle it by the given permutation, hand out its first b items
    and put the batch there."""
    queue, ptr, out = None, 0, []
    perms = iter(perms)
    for x in batches:
        b = len(x)
        if queue is None:
            queue = np.zeros((size, *x.shape[1:]), x.dtype)
        if ptr == size:
            queue = queue[next(perms)]
            out.append(queue[:b].copy())
            queue[:b] = x
        else:
            queue[ptr : ptr + b] = x
            ptr += b
            out.append(x)
    return queue, out


def test_pool_fills_then_trades_shuffled_batches_as_the_official_queue():
    size, b, steps = 12, 4, 7
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, 256, (b, 2, 2, 3), dtype=np.uint8) for _ in range(steps)]
    pool = {"count": jnp.zeros((), jnp.int32), "gt": jnp.zeros((size, 2, 2, 3), jnp.uint8)}
    step = jax.jit(pool_exchange)
    keys = [jax.random.key(i) for i in range(steps)]
    out = []
    for key, x in zip(keys, batches, strict=True):
        pool, got = step(key, pool, {"gt": jnp.asarray(x)})
        out.append(np.asarray(got["gt"]))
    # The permutation each full-pool step drew, as the official torch.randperm would.
    perms = [np.asarray(jax.random.permutation(k, size)) for k in keys[size // b :]]
    queue, want = _official_pool(size, batches, perms)
    np.testing.assert_array_equal(np.asarray(pool["gt"]), queue)
    for g, w in zip(out, want, strict=True):
        np.testing.assert_array_equal(g, w)
    assert int(pool["count"]) == size


def test_recipe_presets_and_refusals():
    gan, net = recipe_config("realesrgan", ""), recipe_config("realesrgan", "net")
    assert (gan.task, net.task) == ("realesrgan", "realesrnet")
    assert dict(gan.losses) == {"l1": 1.0, "perceptual": 1.0, "gan": 0.1}
    assert dict(gan.perceptual.layer_weights) == {
        "conv1_2": 0.1,
        "conv2_2": 0.1,
        "conv3_4": 1.0,
        "conv4_4": 1.0,
        "conv5_4": 1.0,
    }
    assert (gan.data.patch_size, gan.data.batch_size, gan.ema_decay) == (256, 48, 0.999)
    assert (gan.optim.lr, net.optim.lr, gan.num_train_steps) == (1e-4, 2e-4, 400_000)
    assert recipe_config("realesrgan", "scale=2").degradation.scale == 2
    bad = recipe_config("realesrgan", "tiny", pool_size=12)
    with pytest.raises(UserError, match="pool_size=12 is not a multiple of data.batch_size=8"):
        task_class(bad.task).check_config(bad)


@pytest.mark.slow
def test_compact_realesrnet_trains_and_exports_srvgg(tmp_path):
    config = recipe_config("realesrgan", "net,compact,tiny")
    state = loop.train_and_evaluate(config, str(tmp_path / "w"))
    # Four steps of 8 through a pool of 16: filled by steps 1-2, trading from step 3.
    assert int(state.extras["pool"]["count"]) == 16
    assert np.asarray(state.extras["pool"]["lq"]).any()
    module, variables = jaxsr.load_model(str(tmp_path / "w"))
    assert type(module).__name__ == "SRVGGNetCompact" and module.upscale == 4
    x = jnp.full((1, 12, 12, 3), 0.5)
    assert module.apply(variables, x).shape == (1, 48, 48, 3)


@pytest.mark.slow
def test_net_stage_moves_g_alone_then_the_gan_stage_moves_d_too():
    """``net_steps``: RealESRNet's L1 steps (D, its Adam and its spectral u/v untouched),
    then RealESRGAN's steps on the same G with the EMA restarted from it (the demo's one
    run for the paper's two); neither step calls back to the host."""
    from jaxsr.tasks import make_task
    from jaxsr.train import sharding

    config = recipe_config("realesrgan", "tiny")
    task, mesh = make_task(config), sharding.make_mesh()
    (first, net_step), (second, gan_step) = task.phases()
    assert (first, second) == (0, config.net_steps) and config.net_steps > 0
    consts = sharding.put_replicated(task.constants(), mesh)
    batch = sharding.put_batch(task.example_batch(config.data.batch_size), mesh)
    state = loop.init_state(task, config, mesh)
    start = jax.device_get(state)  # the steps donate their input state
    for step_fn in (net_step, gan_step):  # degradations, pool and USM all on the device
        text = loop.compile_train_step(task, mesh, step_fn).lower(state, batch, consts).as_text()
        assert "callback" not in text
    for _ in range(config.net_steps):
        state, metrics = loop.compile_train_step(task, mesh, net_step)(state, batch, consts)
    after_net = jax.device_get(state)
    assert set(metrics) == {"loss", "loss_pix_l1", "lr", "nonfinite"}
    for field in ("params", "opt_state", "batch_stats"):
        jax.tree.map(
            np.testing.assert_array_equal,
            getattr(start, field)["d"],
            getattr(after_net, field)["d"],
        )
    moved = jax.tree.map(lambda a, b: np.abs(a - b).max(), start.params["g"], after_net.params["g"])
    assert max(jax.tree.leaves(moved)) > 0
    state, metrics = loop.compile_train_step(task, mesh, gan_step)(state, batch, consts)
    after_gan = jax.device_get(state)
    assert {"loss_percep", "loss_gan_g", "loss_d_real", "loss_d_fake"} <= set(metrics)
    moved = jax.tree.map(
        lambda a, b: np.abs(a - b).max(), after_net.params["d"], after_gan.params["d"]
    )
    assert max(jax.tree.leaves(moved)) > 0
    # The GAN stage's EMA restarted from the G it began with, as the official second run.
    d = config.ema_decay
    jax.tree.map(
        lambda ema, g0, g1: np.testing.assert_allclose(ema, d * g0 + (1 - d) * g1, atol=1e-6),
        after_gan.ema,
        after_net.params["g"],
        after_gan.params["g"],
    )


@pytest.mark.slow
def test_realworld_protocol_is_seeded_per_image_and_evaluates(tmp_path, capsys):
    from jaxsr.data.images import write_image
    from jaxsr.eval.protocols import RealWorldDegradation
    from jaxsr.evaluate import main as evaluate_main

    rng = np.random.default_rng(0)
    hr = [rng.integers(0, 256, (66, 65, 3), dtype=np.uint8) for _ in range(2)]
    protocol = RealWorldDegradation(seed=3)
    a, again = (protocol.apply(hr[0], scale=4, index=0) for _ in range(2))
    other = protocol.apply(hr[0], scale=4, index=1)
    assert a.shape == (16, 16, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, again)
    assert np.abs(a.astype(int) - other).mean() > 1  # another image index, another draw

    for i, x in enumerate(hr):
        write_image(str(tmp_path / "hr" / f"{i}.png"), x)
    args = ["--model=bicubic", f"--data={tmp_path / 'hr'}", "--realworld", "--seed=3"]
    assert evaluate_main([*args, f"--out={tmp_path / 'eval.json'}"]) == 0
    assert "LR by real-world degradations, seed 3" in capsys.readouterr().out
