"""pix2pixHD training: losses on hand-computed tensors, data checks, the coarse-to-fine
phases (fixed global generator) and exact resume inside them."""

import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import recipe_config
from PIL import Image

from jaxsr.data.label_maps import (
    builtin_label_maps,
    label_source_config,
    make_label_source,
    transform,
)
from jaxsr.errors import Preempted, UserError
from jaxsr.losses.feature_matching import feature_matching_loss, multiscale_gan_loss
from jaxsr.saved_model import load_model
from jaxsr.tasks import make_task
from jaxsr.train import loop
from jaxsr.train.checkpoint import restore_raw_state

CITYSCAPES = os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "data", "cityscapes_samples"
)


def test_gan_and_feature_matching_totals_on_hand_computed_tensors():
    # Two scales, n_layers 1 -> three outputs per scale (two features + the score).
    fake = [
        [jnp.array([1.0, 3.0]), jnp.array([0.0, 2.0]), jnp.array([0.5, 1.5])],
        [jnp.array([2.0]), jnp.array([4.0]), jnp.array([-1.0])],
    ]
    real = [
        [jnp.array([0.0, 1.0]), jnp.array([0.0, 0.0]), jnp.array([1.0, 1.0])],
        [jnp.array([2.0]), jnp.array([1.0]), jnp.array([1.0])],
    ]
    # LSGAN per scale, last output: mean((x - 1)^2) and mean(x^2).
    assert [float(v) for v in multiscale_gan_loss(fake, True)] == [0.25, 4.0]
    assert [float(v) for v in multiscale_gan_loss(fake, False)] == [1.25, 1.0]
    # FM: weight 4/(1+1)/2 = 1; scale 0: mean|1-0,3-1| + mean|0-0,2-0| = 1.5 + 1 = 2.5;
    # scale 1: |2-2| + |4-1| = 3.
    fm = feature_matching_loss(fake, real)
    np.testing.assert_allclose([float(v) for v in fm], [2.5, 3.0])
    # The real branch carries no gradient into FM.
    g = jax.grad(lambda r: sum(feature_matching_loss(fake, [[r, *real[0][1:]], real[1]])))(
        real[0][0]
    )
    assert float(jnp.abs(g).sum()) == 0.0


def _write_layout(root, labels, insts=None, size=(40, 32)):
    for sub in ("train_label", "train_inst", "train_img"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for i, label in enumerate(labels):
        stem = f"city_{i:06d}_000019"
        Image.fromarray(label.astype(np.uint8)).save(
            f"{root}/train_label/{stem}_gtFine_labelIds.png"
        )
        inst = label.astype(np.int32) if insts is None else insts[i]
        Image.fromarray(inst.astype(np.uint16)).save(
            f"{root}/train_inst/{stem}_gtFine_instanceIds.png"
        )
        photo = np.full((*label.shape, 3), 100, np.uint8)
        Image.fromarray(photo).resize(size).save(f"{root}/train_img/{stem}_leftImg8bit.png")


def test_bad_label_data_stops_naming_the_file_and_the_value(tmp_path):
    cfg = recipe_config("pix2pixhd", "tiny").data.train
    cfg.kind, cfg.root = "folder", str(tmp_path)
    ok = np.zeros((32, 40), np.uint8)
    bad = ok.copy()
    bad[3, 4] = 9
    _write_layout(str(tmp_path), [ok, bad])
    with pytest.raises(UserError, match=r"city_000001_000019_gtFine_labelIds\.png: label id 9"):
        make_label_source(cfg, label_nc=8, instances=True)
    assert make_label_source(cfg, label_nc=10, instances=True)  # label_nc fits -> fine

    os.remove(f"{tmp_path}/train_inst/city_000000_000019_gtFine_instanceIds.png")
    with pytest.raises(UserError, match=r"city_000000_000019_gtFine_labelIds\.png has no partner"):
        make_label_source(cfg, label_nc=10, instances=True)
    assert make_label_source(cfg, label_nc=10, instances=False)  # no_instance: not needed

    _write_layout(str(tmp_path / "b"), [ok], size=(41, 32))
    cfg.root = str(tmp_path / "b")
    with pytest.raises(UserError, match=r"is 41x32 but its label map .* is 40x32"):
        make_label_source(cfg, label_nc=10, instances=True)


def test_transform_is_joint_nearest_for_ids_and_renumbers_instances():
    rng = np.random.default_rng(0)
    label = np.repeat(np.repeat(np.arange(4, dtype=np.int32).reshape(2, 2), 20, 0), 30, 1)
    inst = np.where(label == 3, 26001, label).astype(np.int32)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    ex = {"label": label, "inst": inst, "image": image}
    out = transform(
        ex,
        rng,
        mode="scale_width",
        load_size=30,
        fine_size=0,
        base=4,
        flip=False,
        max_instances=8,
    )
    assert out["label"].shape == (20, 30) and out["image"].shape == (20, 30, 3)
    assert set(np.unique(out["label"])) == {0, 1, 2, 3}  # nearest: no new ids
    np.testing.assert_array_equal(np.unique(out["inst"]), [0, 1, 2, 3])  # renumbered
    np.testing.assert_array_equal(out["inst"] == 3, out["label"] == 3)
    with pytest.raises(UserError, match="max_instances=2"):
        transform(
            ex, rng, mode="none", load_size=0, fine_size=0, base=4, flip=False, max_instances=2
        )


def test_builtin_stand_in_labels_are_deterministic_and_cityscapes_style():
    from jaxsr.data.sources import builtin_photo

    photo = builtin_photo("coffee")
    label, inst = builtin_label_maps(photo)
    label2, inst2 = builtin_label_maps(photo)
    np.testing.assert_array_equal(label, label2)
    np.testing.assert_array_equal(inst, inst2)
    assert label.shape == photo.shape[:2] and label.max() < 8
    big = inst[inst >= 1000]
    assert big.size and np.all(big // 1000 == label[inst >= 1000])  # class·1000 + k


def test_builtin_stand_in_holds_out_pixels_never_trained_on():
    from jaxsr.data.label_maps import builtin_split
    from jaxsr.data.sources import BUILTIN_EVAL, builtin_photo

    train, held_out = dict(builtin_split("train")), dict(builtin_split("eval"))
    assert sorted(held_out) == sorted(f"{n}_right" for n in BUILTIN_EVAL)
    assert not set(BUILTIN_EVAL) & set(train)  # only the left halves of the eval photos
    for n in BUILTIN_EVAL:
        photo = builtin_photo(n)
        left, right = train[f"{n}_left"], held_out[f"{n}_right"]
        assert left.shape[1] + right.shape[1] == photo.shape[1]
        np.testing.assert_array_equal(np.concatenate([left, right], 1), photo)
    source = make_label_source(label_source_config("builtin"), label_nc=8, instances=True)
    assert sorted(source.names) == sorted(train)


def _local_tiny(**overrides):
    return recipe_config("pix2pixhd", "local,tiny", **overrides)


@pytest.mark.slow
def test_fixed_global_phase_then_all_of_g_and_exact_resume_inside_it(tmp_path, monkeypatch):
    config = _local_tiny()
    task = make_task(config)
    assert task.num_train_steps() == 4 and [f for f, _ in task.phases()] == [0, 2]
    whole = loop.train_and_evaluate(config, str(tmp_path / "whole"))

    # Stop after step 1 (inside the fixed phase): SIGTERM during the second batch fetch.
    calls = {"n": 0}
    put_batch = loop.sharding.put_batch

    def put_and_preempt(batch, mesh):
        calls["n"] += 1
        if calls["n"] == 1:
            signal.raise_signal(signal.SIGTERM)
        return put_batch(batch, mesh)

    monkeypatch.setattr(loop.sharding, "put_batch", put_and_preempt)
    with pytest.raises(Preempted):
        loop.train_and_evaluate(config, str(tmp_path / "cut"))
    monkeypatch.setattr(loop.sharding, "put_batch", put_batch)
    assert restore_raw_state(str(tmp_path / "cut"))["step"] == 1
    resumed = loop.train_and_evaluate(config, str(tmp_path / "cut"))
    for a, b in zip(jax.tree.leaves(whole.params), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    # The global generator: unchanged through step 2 (fixed phase), changed by step 4.
    init = loop.init_state(task, config, loop.sharding.make_mesh())
    at2 = restore_raw_state(str(tmp_path / "whole"), step=2)["params"]["g"]
    for name, before in init.params["g"].items():
        after2 = at2[name]
        same = jax.tree.map(lambda x, y: bool(np.array_equal(np.asarray(x), y)), before, after2)
        assert all(jax.tree.leaves(same)) == (not name.startswith("model1_")), name
    changed = jax.tree.map(
        lambda x, y: not np.array_equal(np.asarray(x), np.asarray(y)),
        init.params["g"]["global"],
        whole.params["g"]["global"],
    )
    assert all(jax.tree.leaves(changed))


@pytest.mark.slow
def test_global_run_exports_g_and_starts_a_local_run_by_partial_load(tmp_path):
    glob = recipe_config("pix2pixhd", "tiny")
    g_state = loop.train_and_evaluate(glob, str(tmp_path / "g"))

    # The exported G takes the official input encoding and gives what predict gives.
    task = make_task(glob)
    module, variables = load_model(str(tmp_path / "g"))
    batch = jax.tree.map(jnp.asarray, task.random_batch(1, 32, 48))
    x, _ = task.encode(batch)
    assert x.shape[-1] == 8 + 1  # one-hot + edge
    want = task.predict(task.eval_variables(g_state), batch)
    got = (module.apply(variables, x) + 1) / 2
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)

    # Coarse to fine: G1 fills the local G's global part, the 2-scale D two of 3 scales.
    local = _local_tiny(init_from=str(tmp_path / "g"))
    local.discriminator.num_D = 3
    local.epochs.niter = local.epochs.niter_decay = 0  # load only, no training
    state = loop.train_and_evaluate(local, str(tmp_path / "l"))
    fresh = loop.init_state(make_task(local), local, loop.sharding.make_mesh())
    gp, lp = g_state.params, state.params
    for path in (("res_0", "conv1", "kernel"), ("up_1", "kernel"), ("conv_in", "bias")):
        a, b = lp["g"]["global"], gp["g"]
        for k in path:
            a, b = a[k], b[k]
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for scale in ("scale0", "scale1"):
        np.testing.assert_array_equal(
            np.asarray(lp["d"][scale]["layer2"]["kernel"]),
            np.asarray(gp["d"][scale]["layer2"]["kernel"]),
        )
    np.testing.assert_array_equal(  # new parts keep their init
        np.asarray(lp["d"]["scale2"]["layer0"]["kernel"]),
        np.asarray(fresh.params["d"]["scale2"]["layer0"]["kernel"]),
    )
    np.testing.assert_array_equal(
        np.asarray(lp["g"]["model1_1"]["conv_in"]["kernel"]),
        np.asarray(fresh.params["g"]["model1_1"]["conv_in"]["kernel"]),
    )


@pytest.mark.skipif(not os.path.isdir(CITYSCAPES), reason="shared Cityscapes samples absent")
def test_cityscapes_samples_load_in_the_official_layout():
    cfg = recipe_config("pix2pixhd", "").data.train
    cfg.root = CITYSCAPES
    source = make_label_source(cfg, label_nc=35, instances=True)
    assert len(source) == 8
    ex = source[0]
    assert ex["label"].shape == (1024, 2048) and ex["inst"].max() >= 1000
    out = transform(
        ex,
        np.random.default_rng(0),
        mode="scale_width",
        load_size=256,
        fine_size=0,
        base=16,
        flip=True,
        max_instances=256,
    )
    assert out["image"].shape == (128, 256, 3) and out["inst"].max() < 256


def _write_label_folder(folder, photos=("coffee", "chelsea")):
    """Label and instance maps of builtin photos in the official layout (no photos)."""
    from jaxsr.data.sources import builtin_photo

    os.makedirs(f"{folder}/test_label"), os.makedirs(f"{folder}/test_inst")
    for name in photos:
        label, inst = builtin_label_maps(builtin_photo(name))
        Image.fromarray(label.astype(np.uint8)).save(f"{folder}/test_label/{name}_labelIds.png")
        Image.fromarray(inst.astype(np.uint16)).save(f"{folder}/test_inst/{name}_instanceIds.png")
    return f"{folder}/test_label", f"{folder}/test_inst"


@pytest.mark.slow
def test_features_then_synthesize_follow_the_seed_rules(tmp_path, capsys):
    from jaxsr import pix2pixhd_features, synthesize
    from jaxsr.eval.synthesis import load_features

    config = recipe_config("pix2pixhd", "tiny,feat")
    config.encoder.n_downsampling = 3  # deeper than G: sizes must suit E's stride too
    assert make_task(config).base == 8
    loop.train_and_evaluate(config, str(tmp_path / "w"))
    assert pix2pixhd_features.main([f"--workdir={tmp_path / 'w'}", "--data=builtin"]) == 0
    centres = load_features(str(tmp_path / "w" / "features_clustered_010.npz"))
    assert centres and all(c.shape[1] == 3 for c in centres.values())
    labels, insts = _write_label_folder(str(tmp_path / "data"), photos=("coffee",))
    args = [f"--model={tmp_path / 'w'}", f"--labels={labels}", f"--instances={insts}"]
    feat = [f"--features={tmp_path / 'w' / 'features_clustered_010.npz'}"]
    assert synthesize.main([*args, f"--output={tmp_path / 'none'}"]) == 2
    assert "pass --features=FILE" in capsys.readouterr().err
    outs = {}
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        out = tmp_path / run
        assert synthesize.main([*args, *feat, f"--style_seed={seed}", f"--output={out}"]) == 0
        outs[run] = np.asarray(Image.open(out / "coffee_labelIds.png"))
    assert outs["a"].shape == (400, 600, 3)  # the label map's size
    np.testing.assert_array_equal(outs["a"], outs["b"])
    assert not np.array_equal(outs["a"], outs["c"])


@pytest.mark.skipif(not os.path.isdir(CITYSCAPES), reason="shared Cityscapes samples absent")
def test_synthesize_a_cityscapes_folder_with_a_converted_generator(tmp_path, capsys):
    import torch
    from pix2pixhd_torch import GlobalGenerator, init_normal

    from jaxsr import synthesize
    from jaxsr.convert.official import convert

    torch.save(
        init_normal(GlobalGenerator(36, 3, ngf=4, n_down=2, n_blocks=1)).state_dict(),
        str(tmp_path / "g.pth"),
    )
    convert(str(tmp_path / "g.pth"), str(tmp_path / "m"))
    out = tmp_path / "out"
    args = [
        f"--model={tmp_path / 'm'}",
        f"--labels={CITYSCAPES}/train_label",
        f"--instances={CITYSCAPES}/train_inst",
        "--width=256",
        f"--output={out}",
    ]
    assert synthesize.main(args) == 0
    written = sorted(os.listdir(out))
    assert len(written) == 8 and written[0] == "aachen_000000_000019_gtFine_labelIds.png"
    assert Image.open(out / written[0]).size == (256, 128)
    assert synthesize.main([*args[:-1], "--label_nc=20", f"--output={tmp_path / 'x'}"]) == 2
    assert "takes 36 input channels" in capsys.readouterr().err


@pytest.mark.slow
def test_bfloat16_and_remat_train_g_and_d_with_the_vgg_loss():
    from jaxsr.train import sharding
    from jaxsr.train.loop import compile_train_step, init_state

    config = recipe_config("pix2pixhd", "tiny", dtype="bfloat16", remat=True)
    config.losses.vgg, config.vgg_weights = 10.0, "random"
    task = make_task(config)
    mesh = sharding.make_mesh()
    state = init_state(task, config, mesh)
    before = jax.device_get(state.params)
    batch = sharding.put_batch(task.example_batch(config.data.batch_size), mesh)
    consts = sharding.put_replicated(task.constants(), mesh)
    state, metrics = compile_train_step(task, mesh)(state, batch, consts)
    assert float(metrics["nonfinite"]) == 0.0 and float(metrics["loss_g_vgg"]) > 0
    for role in ("g", "d"):  # both networks learn; their params stay float32
        leaves = jax.tree.leaves(state.params[role])
        assert all(x.dtype == jnp.float32 for x in leaves)
        assert any(
            not np.array_equal(np.asarray(a), b)
            for a, b in zip(leaves, jax.tree.leaves(before[role]), strict=True)
        )
