"""DASR: degradations, encoder + MoCo, generator, two-stage training, import, evaluation."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from conftest import recipe_config
from dasr_torch import DASR as TorchDASR
from dasr_torch import BlindSR as TorchBlindSR
from PIL import Image

from jaxsr.convert.official import convert
from jaxsr.data import builtin_photo
from jaxsr.data import degradations as deg
from jaxsr.errors import UserError
from jaxsr.losses.contrastive import enqueue, l2_normalize
from jaxsr.models.dasr import DASR, DegradationEncoder
from jaxsr.ops.imresize import imresize
from jaxsr.saved_model import load_model
from jaxsr.tasks import make_task
from jaxsr.train import sharding
from jaxsr.train.loop import compile_train_step, init_state, train_and_evaluate


def count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def pairs(a, b):
    """Matching leaves of two pytrees of the same structure, as numpy arrays."""
    a, b = jax.device_get(a), jax.device_get(b)
    return [
        (np.asarray(x), np.asarray(y)) for x, y in zip(*map(jax.tree.leaves, (a, b)), strict=True)
    ]


# -- architecture -----------------------------------------------------------------------


def test_parameter_counts_match_the_paper_and_official_code():
    x = jnp.zeros((1, 12, 12, 3))
    g = jax.eval_shape(lambda: DASR(scale=4).init(jax.random.key(0), x, jnp.zeros((1, 256))))
    e = jax.eval_shape(lambda: DegradationEncoder().init(jax.random.key(0), x))["params"]
    mean_shifts = 2 * (3 * 3 + 3)  # official sub_mean/add_mean 1×1 convs; constants here
    assert count(g["params"]) + mean_shifts == 4_690_523
    assert sum(p.numel() for p in TorchDASR(4).parameters()) == 4_690_523
    assert count({k: v for k, v in e.items() if not k.startswith("mlp")}) == 1_147_200
    assert count(e) == 1_278_784
    # Paper Table 3: "5.8M" = G + encoder without its MLP head.
    assert round((4_690_523 + 1_147_200) / 1e6, 1) == 5.8
    # The official model_600.pt holds 471 tensors (spec §2.7).
    assert len(TorchBlindSR().state_dict()) == 471


def _torch_blindsr(scale, **kw):
    torch.manual_seed(scale)
    net = TorchBlindSR(scale, **kw).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval mode is tested
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 5)
                m.running_var.uniform_(0.5, 20)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return net


@pytest.mark.parametrize(
    "scale,kw",
    [
        (4, dict(c=64, n_groups=2, n_blocks=2)),
        (3, dict(c=16, n_groups=1, n_blocks=2, widths=(16, 16, 32, 32, 64, 64))),
        (2, dict(c=16, n_groups=2, n_blocks=1, reduction=4, widths=(8, 8, 16, 16, 32, 32))),
    ],
)
def test_imported_dasr_matches_torch(tmp_path, scale, kw):
    net = _torch_blindsr(scale, **kw)
    src = str(tmp_path / "model_600.pt")
    torch.save(net.state_dict(), src)
    convert(src, str(tmp_path / "m"))
    module, variables = load_model(str(tmp_path / "m"))
    assert module.scale == scale
    lr = torch.rand(2, 3, 21, 26) * 255  # odd sizes: stride-2 padding of the encoder
    with torch.no_grad():
        want = net(lr).numpy().transpose(0, 2, 3, 1)
        want_fea = net.E.encoder_q(lr)[0].numpy()
    x = jnp.asarray(lr.numpy().transpose(0, 2, 3, 1)) / 255.0
    got = np.asarray(module.apply(variables, x)) * 255.0
    fea = np.asarray(module.apply(variables, x, method="embed"))
    np.testing.assert_allclose(fea, want_fea, atol=1e-4, rtol=1e-5)
    assert np.max(np.abs(got - want)) <= 1e-4  # 0–255 units (measured 6e-5)


def test_imported_encoder_matches_torch_in_train_mode(tmp_path):
    """Training uses batch statistics: the encoder (and its MLP head) in train mode."""
    net = _torch_blindsr(4, c=8, n_groups=1, n_blocks=1)
    torch.save(net.state_dict(), str(tmp_path / "m.pt"))
    convert(str(tmp_path / "m.pt"), str(tmp_path / "m"))
    _, variables = load_model(str(tmp_path / "m"))
    lr = torch.rand(4, 3, 24, 24) * 255
    enc = net.E.encoder_q.train()
    with torch.no_grad():
        fea, out = (t.numpy() for t in enc(lr))
    (got_fea, got_out), _ = DegradationEncoder().apply(
        {"params": variables["params"]["E"], "batch_stats": variables["batch_stats"]["E"]},
        jnp.asarray(lr.numpy().transpose(0, 2, 3, 1)),
        train=True,
        mutable=["batch_stats"],
    )
    np.testing.assert_allclose(np.asarray(got_fea), fea, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(got_out), out, atol=1e-4, rtol=1e-4)


def test_full_size_official_keys_convert_with_the_right_shape(tmp_path):
    net = TorchBlindSR(4)
    sd = net.state_dict()
    sd["E.queue"] = torch.randn(256, 8192)  # a training checkpoint's extras are ignored
    torch.save(sd, str(tmp_path / "full.pt"))
    assert "DASR ×4 (5 groups × 5 blocks, 64 features)" in convert(
        str(tmp_path / "full.pt"), str(tmp_path / "m")
    )
    module, variables = load_model(str(tmp_path / "m"))
    assert count(variables["params"]["G"]) == 4_690_523 - 24


def test_wrong_rgb_range_is_refused(tmp_path):
    sd = _torch_blindsr(2, c=8, n_groups=1, n_blocks=1).state_dict()
    sd["G.sub_mean.bias"] = sd["G.sub_mean.bias"] / 255.0  # an rgb_range=1 model
    torch.save(sd, str(tmp_path / "m.pt"))
    with pytest.raises(UserError, match="rgb_range"):
        convert(str(tmp_path / "m.pt"), str(tmp_path / "m"))


# -- degradations -------------------------------------------------------------------------


def test_isotropic_kernel_is_the_normalised_gaussian():
    k = np.asarray(deg.isotropic_gaussian_kernel(21, 1.7))
    y, x = np.mgrid[-10:11, -10:11]
    want = np.exp(-(x**2 + y**2) / (2 * 1.7**2))
    np.testing.assert_allclose(k, want / want.sum(), rtol=1e-5, atol=1e-9)
    assert k.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(k, k.T, atol=1e-9)
    delta = np.asarray(deg.isotropic_gaussian_kernel(21, 0.0))
    assert delta[10, 10] == 1.0 and delta.sum() == 1.0


# λ ≤ 2.2 so that the 21×21 window (±4.5λ) does not truncate the covariance.
@pytest.mark.parametrize("l1,l2,theta", [(2.0, 0.8, 0.0), (2.2, 0.7, math.pi / 3), (1.5, 1.5, 2.0)])
def test_anisotropic_kernel_covariance_follows_lambda_and_theta(l1, l2, theta):
    k = np.asarray(deg.anisotropic_gaussian_kernel(21, l1, l2, theta), np.float64)
    assert k.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-8)  # point-symmetric
    y, x = np.mgrid[-10:11, -10:11].astype(np.float64)
    cov = np.array([[np.sum(k * x * x), np.sum(k * x * y)], [np.sum(k * x * y), np.sum(k * y * y)]])
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    want = rot @ np.diag([l1**2, l2**2]) @ rot.T  # λ are standard deviations, x = column
    np.testing.assert_allclose(cov, want, atol=5e-3)
    # A closed-form value: density at (x=2, y=-1) relative to the centre.
    v = np.array([2.0, -1.0])
    assert k[9, 12] / k[10, 10] == pytest.approx(np.exp(-0.5 * v @ np.linalg.inv(want) @ v), 1e-4)


def test_fused_blur_downscale_equals_blur_then_bicubic():
    x = jnp.asarray(np.random.default_rng(0).uniform(0, 255, (2, 96, 84, 3)), jnp.float32)
    for kernel in (
        deg.isotropic_gaussian_kernel(21, 2.3),
        deg.anisotropic_gaussian_kernel(21, 3.5, 1.0, 0.9),
    ):
        want = imresize(deg.blur(x, kernel), size=(24, 21), boundary="edge")
        got = deg.blur_downscale(x, jnp.eye(21), kernel, scale=4, boundary="edge")
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-3)


def test_blur_pads_by_reflection_like_pytorch():
    x = np.random.default_rng(1).uniform(0, 255, (1, 3, 30, 25)).astype(np.float32)
    kernel = np.asarray(deg.anisotropic_gaussian_kernel(21, 3.0, 1.2, 0.4))
    padded = torch.nn.ReflectionPad2d(10)(torch.from_numpy(x))
    weight = torch.tensor(kernel).expand(3, 1, 21, 21)
    want = torch.nn.functional.conv2d(padded, weight, groups=3).numpy().transpose(0, 2, 3, 1)
    got = deg.blur(jnp.asarray(x.transpose(0, 2, 3, 1)), jnp.asarray(kernel))
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-3)


@pytest.mark.parametrize("mode", ["iso", "aniso"])
def test_a_constant_image_stays_constant(mode):
    cfg = deg.DegradationConfig(scale=3, mode=mode, sig_max=3.0)
    hr = jnp.full((4, 2, 36, 36, 3), 117.0)
    lq, params = deg.random_degrade(jax.random.key(0), hr, cfg)
    assert lq.shape == (4, 2, 12, 12, 3)
    assert np.all(np.asarray(lq) == 117.0)
    assert params["kernel"].shape == (4, 1 if mode == "iso" else 3)


def test_noise_level_and_kernel_are_shared_by_the_patches_of_one_image():
    cfg = deg.DegradationConfig(scale=2, mode="iso", sig_max=2.0, noise=25.0)
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (3, 1, 40, 40, 3)).astype(np.float32)
    hr = jnp.asarray(np.concatenate([img, img], axis=1))  # two identical patches per image
    lq, params = deg.random_degrade(jax.random.key(3), hr, cfg)
    lq = np.asarray(lq)
    diff = lq[:, 0] - lq[:, 1]  # same blur: only independent noise remains
    for b in range(3):
        est = diff[b, 2:-2, 2:-2].std() / np.sqrt(2)  # per-image σ_n, clipping aside
        assert est == pytest.approx(float(params["noise"][b]), abs=1.5)
    assert np.all((params["noise"] >= 0) & (params["noise"] <= 25.0))


def test_device_degradation_matches_the_host_pipeline():
    hr = np.random.default_rng(2).integers(0, 256, (64, 60, 3)).astype(np.uint8)
    for fixed in (deg.FixedDegradation(sigma=2.4), deg.FixedDegradation(aniso=(3.5, 2.0, 45.0))):
        host = fixed.apply(hr, scale=4).astype(int)
        device = deg.degrade(
            jnp.asarray(hr, jnp.float32),
            jnp.asarray(fixed.kernel()),
            0.0,
            jax.random.key(0),
            scale=4,
        )
        diff = np.abs(np.asarray(device).astype(int) - host)
        assert diff.max() <= 1 and diff.mean() < 0.01  # float32 vs float64 at .5 ties only


def test_paper_eval_settings():
    t2 = deg.eval_degradations(scale=4)
    assert [d.label for d in t2] == ["σ=0", "σ=1.2", "σ=2.4", "σ=3.6"]
    t3 = deg.eval_degradations(scale=4, aniso=deg.PAPER_ANISO_KERNELS, noises=(0, 5, 10))
    assert len(t3) == 27 and t3[-1].label == "λ=4/4 θ=180° noise=10"


# -- MoCo and the train step ---------------------------------------------------------------


def test_enqueue_is_a_ring_buffer():
    queue, ptr = jnp.zeros((6, 2)), jnp.zeros((), jnp.int32)
    for i in range(4):
        queue, ptr = enqueue(queue, ptr, jnp.full((2, 2), i + 1.0))
    # 4 batches of 2 into 6 slots: batch 4 overwrote batch 1.
    np.testing.assert_array_equal(np.asarray(queue[:, 0]), [4, 4, 2, 2, 3, 3])
    assert int(ptr) == 2


def _dasr_tiny(**overrides):
    return recipe_config("dasr", "tiny", **overrides)


def _batch(task, n=8, seed=0):
    p = task.config.data.patch_size
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 2, p // 4, p // 4, 3)).astype(np.float32)
    return {"gt": np.repeat(np.repeat(small, 4, 2), 4, 3).astype(np.uint8)}


def _run(task, config, mesh, n_steps, record=None):
    state = init_state(task, config, mesh)
    steps = {first: compile_train_step(task, mesh, fn) for first, fn in task.phases()}
    metrics = []
    for i in range(n_steps):
        fn = steps[max(f for f in steps if f <= i)]
        batch = _batch(task, seed=i)
        if record is not None:
            record.append((jax.device_get(state), batch))
        state, m = fn(state, sharding.put_batch(batch, mesh), {})
        metrics.append(jax.device_get(m))
    return state, metrics


def _expected_keys(task, pre_state, batch):
    """The keys of one step, recomputed here: momentum update first, then encoder_k."""
    m = task.momentum
    key_params = jax.tree.map(
        lambda k, q: m * k + (1 - m) * q, pre_state.extras["key_params"], pre_state.params["e"]
    )
    _, deg_rng = jax.random.split(pre_state.rng)
    gt = batch["gt"]
    if task.key_patch == "other_image":  # image b's key: image b-1's patch, b's kernel
        gt = np.stack([gt[:, 0], gt[[-1, *range(len(gt) - 1)], 1]], axis=1)
    lq = task.degrade(deg_rng, jnp.asarray(gt))
    (_, out), _ = task.encoder.apply(
        {"params": key_params, "batch_stats": pre_state.batch_stats["k"]},
        lq[:, 1],
        train=True,
        mutable=["batch_stats"],
    )
    return key_params, np.asarray(l2_normalize(out))


@pytest.mark.slow
@pytest.mark.parametrize(
    "n_dev,key_patch", [(1, "same_image"), (8, "same_image"), (8, "other_image")]
)
def test_queue_holds_the_last_keys_in_order_and_momentum_is_exact(n_dev, key_patch, n_devices):
    config = _dasr_tiny(**{"moco.queue_size": 16, "moco.key_patch": key_patch})
    task = make_task(config)
    mesh = sharding.make_mesh(jax.devices()[:n_dev])
    record = []
    state, _ = _run(task, config, mesh, 3, record)
    keys = []
    for pre_state, batch in record:
        key_params, k = _expected_keys(task, pre_state, batch)
        keys.append(k)
    queue = np.asarray(state.extras["queue"])
    # 3 batches of 8 keys in a 16-slot ring: batch 3 overwrote batch 1.
    np.testing.assert_allclose(queue[:8], keys[2], atol=1e-5)
    np.testing.assert_allclose(queue[8:], keys[1], atol=1e-5)
    assert int(state.extras["queue_ptr"]) == 8
    for got, want in pairs(state.extras["key_params"], key_params):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_sharded_dasr_step_equals_single_device_step(n_devices):
    config = _dasr_tiny()
    task = make_task(config)
    results = [_run(task, config, sharding.make_mesh(d), 3) for d in (jax.devices()[:1], None)]
    (s1, m1), (s8, m8) = results

    # The biases of the convs that feed a BatchNorm have a zero gradient in exact
    # arithmetic (BN removes any constant); Adam turns their float noise into ±lr
    # steps that differ with the reduction order, so they are left out.
    def meaningful(s):
        e = {k: v for k, v in s.params["e"].items() if not k.startswith("conv")}
        return (e, s.params["g"], s.batch_stats, s.extras["queue"])

    for a, b in pairs(meaningful(s1), meaningful(s8)):
        np.testing.assert_allclose(a, b, atol=2e-4, rtol=1e-4)
    assert [float(m["loss"]) for m in m1] == pytest.approx([float(m["loss"]) for m in m8], rel=1e-4)


@pytest.mark.slow
def test_stage_one_leaves_the_sr_network_and_its_adam_state_untouched():
    config = _dasr_tiny()  # encoder_steps = 2
    task = make_task(config)
    mesh = sharding.make_mesh(jax.devices()[:1])
    record = []
    state, metrics = _run(task, config, mesh, 3, record)
    g0 = record[0][0].params["g"]
    after_stage1 = record[2][0]
    for a, b in pairs(g0, after_stage1.params["g"]):
        np.testing.assert_array_equal(a, b)
    assert int(after_stage1.opt_state["g"][0].count) == 0
    assert int(after_stage1.opt_state["e"][0].count) == 2
    assert int(state.opt_state["g"][0].count) == 1  # bias correction starts at stage 2
    assert [m["stage"] for m in metrics] == [1.0, 1.0, 2.0]
    assert metrics[0]["loss_l1"] == 0.0 and metrics[2]["loss_l1"] > 0.0
    assert all(not np.array_equal(a, b) for a, b in pairs(g0, state.params["g"]))


def test_paper_schedule_in_steps():
    config = recipe_config("dasr", "")
    task = make_task(config)
    epoch = 970
    lr = lambda e: float(task.schedule((e - 1) * epoch))  # noqa: E731 - first step of epoch e
    assert [lr(1), lr(59), lr(60), lr(100)] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4])
    assert [lr(101), lr(224), lr(225), lr(350), lr(475), lr(600)] == pytest.approx(
        [1e-4, 1e-4, 5e-5, 2.5e-5, 1.25e-5, 6.25e-6]
    )
    assert config.num_train_steps == 600 * epoch
    assert config.data.patch_size == 192 and config.degradation.sig_max == 4.0
    two = recipe_config("dasr", "scale=2")
    assert two.data.patch_size == 96 and two.degradation.sig_max == 2.0


def test_queue_size_must_be_a_multiple_of_the_batch():
    with pytest.raises(UserError, match="not a multiple of the global batch"):
        make_task(_dasr_tiny(**{"moco.queue_size": 20}))


# -- end to end ----------------------------------------------------------------------------


@pytest.mark.slow
def test_tiny_dasr_trains_resumes_and_evaluates(tmp_path, capsys):
    from jaxsr.evaluate import main as evaluate_main

    workdir = str(tmp_path / "run")
    config = _dasr_tiny()
    train_and_evaluate(config, workdir)
    out = capsys.readouterr().out
    assert "σ=0" in out and "σ=2" in out and "Model vs bicubic" in out
    config.num_train_steps = 6  # resume from step 4 (a longer run: an asked-for change)
    state = train_and_evaluate(config, workdir, allow_config_change=True)
    assert int(state.step) == 6
    module, variables = load_model(workdir)
    assert set(variables) == {"params", "batch_stats"}
    plot = str(tmp_path / "emb.png")
    assert (
        evaluate_main(
            [f"--model={workdir}", "--sigmas=0,1.2", "--noise=0,5", f"--embedding_plot={plot}"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "σ=1.2 noise=5" in out and "nearest-centroid accuracy" in out
    assert os.path.getsize(plot) > 0
    small = tmp_path / "set"
    small.mkdir()
    Image.fromarray(builtin_photo("coffee")[:48, :64]).save(small / "a.png")
    assert evaluate_main([f"--model={workdir}", "--aniso=2/0.2/0,table3", f"--data={small}"]) == 0
    capsys.readouterr()
    assert evaluate_main([f"--model={workdir}", "--aniso=2/0.2"]) == 2
    assert "expected lambda1/lambda2/theta_degrees" in capsys.readouterr().err


def test_scanned_groups_and_blocks_have_the_same_params_output_and_gradients():
    from jaxsr.models.dasr import BlindSR

    x = jax.random.uniform(jax.random.key(0), (2, 12, 12, 3))
    kw = dict(n_feats=8, n_groups=2, n_blocks=2, encoder_widths=(8, 8, 16, 16, 16, 16))
    plain, scanned = BlindSR(**kw, remat=True), BlindSR(**kw, remat=True, scan_blocks=True)
    variables = plain.init(jax.random.key(1), x)
    assert jax.tree.structure(scanned.init(jax.random.key(1), x)) == jax.tree.structure(variables)
    np.testing.assert_allclose(scanned.apply(variables, x), plain.apply(variables, x), atol=1e-6)

    def grads(model):
        def loss(params):
            return jnp.mean(model.apply({**variables, "params": params}, x) ** 2)

        return jax.grad(loss)(variables["params"])

    for a, b in zip(jax.tree.leaves(grads(scanned)), jax.tree.leaves(grads(plain)), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-7)


def test_shuffled_batchnorm_groups_normalise_each_group_on_its_own():
    task = make_task(_dasr_tiny(**{"moco.bn_groups": 2}))
    plain = make_task(_dasr_tiny())
    images = jax.random.uniform(jax.random.key(0), (8, 12, 12, 3)) * 255.0
    variables = task.encoder.init(jax.random.key(1), images[:1], train=False)
    params, stats = variables["params"], variables["batch_stats"]

    # One group is the official single-batch BatchNorm.
    whole = plain.encode(params, stats, images)
    (fea, _), _ = task.encoder.apply(variables, images, train=True, mutable=["batch_stats"])
    np.testing.assert_array_equal(whole[0], fea)

    # Two groups: the first half's output ignores the second half's images.
    other = images.at[4:].set(255.0 - images[4:])
    a, b = task.encode(params, stats, images), task.encode(params, stats, other)
    np.testing.assert_allclose(a[0][:4], b[0][:4], rtol=1e-6)
    assert not np.allclose(whole[0][:4], plain.encode(params, stats, other)[0][:4])
    # ... and equals the first half encoded alone; the running stats average the groups.
    (first, _), s1 = task.encoder.apply(variables, images[:4], train=True, mutable=["batch_stats"])
    (_, _), s2 = task.encoder.apply(variables, images[4:], train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(a[0][:4], first, rtol=1e-5, atol=1e-6)
    for got, x, y in zip(
        jax.tree.leaves(a[2]),
        jax.tree.leaves(s1["batch_stats"]),
        jax.tree.leaves(s2["batch_stats"]),
        strict=True,
    ):
        np.testing.assert_allclose(got, (x + y) / 2, rtol=1e-5, atol=1e-6)

    # Shuffled: each image is normalised with the group the permutation put it in, and
    # the outputs come back in the input order.
    key = jax.random.key(3)
    perm = np.asarray(jax.random.permutation(key, 8))
    fea_s = task.encode(params, stats, images, shuffle=key)[0]
    for half in (perm[:4], perm[4:]):
        (want, _), _ = task.encoder.apply(
            variables, images[half], train=True, mutable=["batch_stats"]
        )
        np.testing.assert_allclose(fea_s[half], want, rtol=1e-5, atol=1e-6)
    with pytest.raises(UserError, match="does not divide"):
        make_task(_dasr_tiny(**{"moco.bn_groups": 3}))


def test_contrastive_logits_put_the_positive_first_and_the_hard_negative_second():
    from jaxsr.losses.contrastive import contrastive_logits, info_nce

    q = l2_normalize(jax.random.normal(jax.random.key(0), (4, 8)))
    k, hard = q, l2_normalize(jax.random.normal(jax.random.key(1), (4, 8)))
    queue = l2_normalize(jax.random.normal(jax.random.key(2), (16, 8)))
    plain = contrastive_logits(q, k, queue, 0.07)
    logits = contrastive_logits(q, k, queue, 0.07, hard=hard)
    assert plain.shape == (4, 17) and logits.shape == (4, 18)
    np.testing.assert_allclose(logits[:, 0], 1 / 0.07, rtol=1e-5)  # q·q / T
    np.testing.assert_allclose(logits[:, 1], np.sum(q * hard, -1) / 0.07, rtol=1e-5)
    np.testing.assert_allclose(logits[:, 2:], plain[:, 1:], rtol=1e-6)
    # A hard negative as close as the positive costs log 2 more than none at all.
    tied = contrastive_logits(q, k, queue, 0.07, hard=k)
    assert float(info_nce(tied)) > float(info_nce(plain)) + 0.6


@pytest.mark.slow
def test_hard_negatives_and_shuffled_bn_train_and_queue_only_the_positive_keys(n_devices):
    config = _dasr_tiny(**{"moco.queue_size": 32, "moco.hard_negatives": True, "moco.bn_groups": 2})
    task = make_task(config)
    state, metrics = _run(task, config, sharding.make_mesh(), 2)
    assert int(state.extras["queue_ptr"]) == 16  # 2 batches of 8 keys (not 0: 2 × 16)
    assert all(np.isfinite(float(m["loss"])) for m in metrics)
