"""``python -m jaxsr.export``: ONNX (run by ONNX Runtime) and StableHLO (deserialized)
files of every image-to-image generator, at sizes other than the export's own check,
against ``module.apply``; the official-weight chain against a PyTorch module; the
ONNX Runtime backend of ``jaxsr.upscale`` on odd images."""

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxsr.data import builtin_photo, read_image, write_image
from jaxsr.deploy import export as export_lib
from jaxsr.deploy.runtimes import OnnxModel, run_stablehlo
from jaxsr.errors import UserError
from jaxsr.export import main as export_main
from jaxsr.models import build_model
from jaxsr.saved_model import load_model_and_task, save_model
from jaxsr.upscale import main as upscale_main

pytest.importorskip("onnxruntime")

SEG = 8  # SFTGAN's prior classes
TINY_RRDB = dict(num_feat=8, num_block=1, num_grow_ch=4)

# name -> (registry name, kwargs, input sides that are not the export check's own; odd
# for the networks that need multiples, so the padding inside the graph runs)
ARCHS = {
    "rrdbnet_x4": ("rrdbnet", dict(scale=4, num_feat=8, num_block=2, num_grow_ch=4), (13, 7)),
    "rrdbnet_x2": ("rrdbnet", dict(scale=2, **TINY_RRDB), (13, 9)),
    "srvgg": ("srvgg", dict(num_feat=8, num_conv=2), (11, 9)),
    "dasr": ("dasr", dict(n_feats=8, n_groups=1, n_blocks=1, reduction=4), (13, 11)),
    "mirnet": ("mirnet", dict(n_feat=8, n_rrg=1, n_mrb=1), (15, 9)),
    "sftgan": ("sftgan", dict(num_feat=8, num_block=1, num_classes=SEG, cond_ch=4), (9, 7)),
    "spsagan": ("spsagan", dict(**TINY_RRDB, num_classes=SEG, cond_ch=4, query_block=16), (9, 7)),
    "pix2pixhd": ("pix2pixhd_global", dict(ngf=4, n_downsampling=2, n_blocks=1), (21, 13)),
}
PRIOR = ("sftgan", "spsagan")


def _example(name, kw, h, w, n=1):
    rng = np.random.default_rng(7)
    if name == "pix2pixhd_global":
        label = rng.integers(0, 35, (n, h, w)).astype(np.int32)
        inst = np.repeat(rng.integers(0, 4, (n, h, w // 4 + 1)), 4, 2)[:, :, :w].astype(np.int32)
        return [label, inst]
    lq = rng.uniform(0, 1, (n, h, w, 3)).astype(np.float32)
    if name in PRIOR:
        seg = rng.dirichlet(np.ones(SEG), (n, 4 * h, 4 * w)).astype(np.float32)
        return [lq, seg]
    return [lq]


def _reference(module, variables, name, inputs):
    """What the graph must compute, from the model's own apply: sides that are not
    multiples of what the network needs reflect-padded (bottom, right) as Real-ESRGAN's
    inference pads, and the output cropped."""
    h, w = inputs[0].shape[1:3]
    m = getattr(module, "size_multiple", 1)
    if name == "mirnet":
        m = 1  # MIRNet pads inside its own apply
    pads = [(0, 0), (0, -h % m), (0, -w % m)]
    inputs = [np.pad(x, pads + [(0, 0)] * (x.ndim - 3), mode="reflect") for x in inputs]
    if name == "pix2pixhd_global":
        from jaxsr.ops.labels import encode_labels

        x = encode_labels(jnp.asarray(inputs[0]), jnp.asarray(inputs[1]), 35)
        out = (np.asarray(module.apply(variables, x)) + 1) / 2
    else:
        out = np.asarray(module.apply(variables, *map(jnp.asarray, inputs)))
    s = module.scale if name != "pix2pixhd_global" else 1
    return np.clip(out, 0, 1)[:, : s * h, : s * w]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    out = {}
    for key, (name, kw, _) in ARCHS.items():
        module = build_model(name, **kw)
        example = _example(name, kw, 16, 16)
        if name == "pix2pixhd_global":
            example = [jnp.zeros((1, 16, 16, 36))]
        variables = module.init(jax.random.key(1), *map(jnp.asarray, example))
        d = tmp_path_factory.mktemp(key) / "model"
        save_model(str(d), name, kw, variables)
        out[key] = str(d)
    return out


@pytest.mark.parametrize("key", sorted(ARCHS))
def test_onnx_and_stablehlo_match_jaxsr_at_a_size_the_export_did_not_check(
    key, model_dirs, tmp_path
):
    name, kw, (h, w) = ARCHS[key]
    module, variables, _ = load_model_and_task(model_dirs[key])
    inputs = _example(name, kw, h, w, n=3)
    want = _reference(module, variables, name, inputs)

    report = export_lib.export_model(model_dirs[key], "onnx", str(tmp_path / "m.onnx"))
    assert max(e for _, e in report.errors) <= 1e-4 and len(report.errors) == 2
    onnx_model = OnnxModel(str(tmp_path / "m.onnx"))
    assert onnx_model.input_names[0] in ("input", "label")
    assert onnx_model.input_names[1:] == {"sftgan": ["prior"], "spsagan": ["prior"]}.get(
        key, ["instance"] if key == "pix2pixhd" else []
    )
    got = onnx_model(*inputs)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4)

    export_lib.export_model(model_dirs[key], "stablehlo", str(tmp_path / "m.stablehlo"))
    blob = (tmp_path / "m.stablehlo").read_bytes()
    np.testing.assert_allclose(run_stablehlo(blob, *inputs), want, atol=1e-4)


def test_onnx_follows_the_ecosystems_conventions(model_dirs, tmp_path):
    import onnx

    path = tmp_path / "x2.onnx"
    assert (
        export_main([f"--model={model_dirs['rrdbnet_x2']}", "--format=onnx", f"--out={path}"]) == 0
    )
    graph = onnx.load(str(path)).graph
    (inp,), (out,) = graph.input, graph.output
    assert (inp.name, out.name) == ("input", "output")
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims[1] == 3 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))
    model = OnnxModel(str(path))
    assert (model.scale, model.multiple) == (2, 2)
    # Odd sides are padded inside the graph (the ×2 pixel-unshuffle needs even ones).
    module, variables, _ = load_model_and_task(model_dirs["rrdbnet_x2"])
    x = _example("rrdbnet", {}, 7, 8)
    want = _reference(module, variables, "rrdbnet", x)
    np.testing.assert_allclose(model(*x), want, atol=1e-4)
    with pytest.raises(UserError, match="takes images from 2 pixels a side; this one has 1"):
        model(np.zeros((1, 1, 8, 3), np.float32))


def test_fixed_batch_float16_and_the_output_rules(model_dirs, tmp_path, capsys):
    src = model_dirs["srvgg"]
    out = tmp_path / "half.onnx"
    args = [f"--model={src}", "--format=onnx", f"--out={out}", "--dtype=float16", "--batch=2"]
    assert export_main(args) == 0
    line = capsys.readouterr().out
    assert "float16" in line and "tolerance 0.02" in line
    x = np.random.default_rng(0).uniform(0, 1, (2, 10, 12, 3)).astype(np.float32)
    module, variables, _ = load_model_and_task(src)
    got = OnnxModel(str(out))(x)
    assert got.dtype == np.float32
    assert np.abs(got - np.clip(np.asarray(module.apply(variables, x)), 0, 1)).max() <= 2e-2
    # An existing output is kept unless --overwrite, as jaxsr.convert --out.
    assert export_main(args) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert export_main([*args, "--overwrite"]) == 0
    assert export_main([*args[:3], "--batch=none"]) == 2
    assert "--batch='none'" in capsys.readouterr().err


def test_export_never_writes_inside_its_input_model(model_dirs, capsys):
    """Issue 38, item 7, replayed: ``export --out=MODEL/variables.npz --overwrite``
    replaced the model's own weights."""
    src = pathlib.Path(model_dirs["srvgg"])
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    for name in ("variables.npz", "model.onnx"):
        args = [f"--model={src}", "--format=onnx", f"--out={src / name}", "--overwrite"]
        assert export_main(args) == 2
        assert "lies inside the input folder" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before


def test_a_mismatch_is_an_error_and_leaves_nothing(model_dirs, tmp_path, monkeypatch):
    monkeypatch.setitem(export_lib.TOLERANCE, "float32", -1.0)  # no file can pass
    out = tmp_path / "bad.onnx"
    with pytest.raises(UserError, match="differs from jaxsr by up to .* nothing was written"):
        export_lib.export_model(model_dirs["srvgg"], "onnx", str(out))
    assert not out.exists() and not list(tmp_path.iterdir())


def test_official_weights_convert_export_and_run_in_onnxruntime_as_in_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    from realesrgan_torch import TorchSRVGG

    from jaxsr.convert.official import convert

    torch.manual_seed(0)
    ref = TorchSRVGG(8, 3, 4, "prelu").eval()
    torch.save({"params_ema": ref.state_dict()}, tmp_path / "realesr-general-x4v3.pth")
    convert(str(tmp_path / "realesr-general-x4v3.pth"), str(tmp_path / "m"))
    export_lib.export_model(str(tmp_path / "m"), "onnx", str(tmp_path / "m.onnx"))
    x = np.random.default_rng(3).uniform(0, 1, (2, 3, 17, 11)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).clamp(0, 1).numpy()
    got = OnnxModel(str(tmp_path / "m.onnx")).session.run(["output"], {"input": x})[0]
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_upscale_with_onnxruntime_equals_jax_on_odd_images(model_dirs, tmp_path, capsys):
    src = tmp_path / "in"
    rgb = builtin_photo("chelsea")[:30, :41]
    write_image(str(src / "photo.png"), rgb)
    Image.fromarray(rgb[..., 0]).save(src / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 90, np.uint8)])).save(src / "rgba.png")
    write_image(str(src / "deep.png"), rgb.astype(np.uint16) * 257)
    tiles = ["--tile=16", "--tile_overlap=4"]
    common = [f"--model={model_dirs['rrdbnet_x4']}", f"--input={src}", *tiles]
    assert upscale_main([*common, f"--output={tmp_path / 'jax'}"]) == 0
    onnx_file = tmp_path / "m.onnx"
    export_lib.export_model(model_dirs["rrdbnet_x4"], "onnx", str(onnx_file))
    for model, out in ((model_dirs["rrdbnet_x4"], "ort_dir"), (str(onnx_file), "ort_file")):
        args = [f"--model={model}", f"--input={src}", *tiles, f"--output={tmp_path / out}"]
        assert upscale_main([*args, "--backend=onnxruntime"]) == 0
        for f in ("photo_x4.png", "gray_x4.png", "rgba_x4.png", "deep_x4.png"):
            a = read_image(str(tmp_path / "jax" / f)).pixels.astype(int)
            b = read_image(str(tmp_path / out / f)).pixels.astype(int)
            assert a.shape == b.shape
            # within the export's 1e-4, as levels: a rounding step at 8 bits, 7 at 16
            assert np.abs(a - b).max() <= (7 if f.startswith("deep") else 1), f
    # The whole 30x41 image at once through the x2 network, whose graph pads odd sides.
    for backend in ("jax", "onnxruntime"):
        args = [f"--model={model_dirs['rrdbnet_x2']}", f"--input={src / 'photo.png'}", "--tile=0"]
        assert upscale_main([*args, f"--output={tmp_path / backend}", f"--backend={backend}"]) == 0
    a, b = (read_image(str(tmp_path / d / "photo_x2.png")).pixels for d in ("jax", "onnxruntime"))
    assert a.shape == (60, 82, 3) and np.abs(a.astype(int) - b).max() <= 1
    assert "Exported" in capsys.readouterr().out
    bad = [*common, f"--output={tmp_path / 'x'}", "--backend=onnxruntime", "--self_ensemble"]
    assert upscale_main(bad) == 2
    assert "--self_ensemble runs with --backend=jax only" in capsys.readouterr().err


def test_evaluate_with_onnxruntime_scores_as_jax(model_dirs, tmp_path, capsys):
    from jaxsr.evaluate import main as evaluate_main

    hr = tmp_path / "hr"
    photo = builtin_photo("astronaut")
    write_image(str(hr / "a.png"), photo[:52, :44])
    write_image(str(hr / "b.png"), photo[100:140, 60:108])
    model = model_dirs["rrdbnet_x2"]  # LR 26x22 and 20x24: the x2 graph pads 13x11 inside
    scores = {}
    for backend in ("jax", "onnxruntime"):
        out = tmp_path / f"{backend}.json"
        args = [f"--model={model}", f"--data={hr}", f"--out={out}", f"--backend={backend}"]
        assert evaluate_main(args) == 0
        scores[backend] = json.loads(out.read_text())["datasets"]["hr"]["model"]
    capsys.readouterr()
    assert scores["jax"]["psnr"] == pytest.approx(scores["onnxruntime"]["psnr"], abs=0.01)
    assert scores["jax"]["ssim"] == pytest.approx(scores["onnxruntime"]["ssim"], abs=1e-4)
    # An .onnx file is scored too; its report goes beside it.
    onnx_file = tmp_path / "x2.onnx"
    export_lib.export_model(model, "onnx", str(onnx_file))
    assert evaluate_main([f"--model={onnx_file}", f"--data={hr}", "--backend=onnxruntime"]) == 0
    assert (tmp_path / "eval.json").exists()
    prior = [f"--model={model_dirs['sftgan']}", f"--data={hr}", "--backend=onnxruntime"]
    assert evaluate_main(prior) == 2
    assert "takes input, prior: not an image-to-image model" in capsys.readouterr().err


def _foreign(src: pathlib.Path, dst: pathlib.Path, **meta) -> None:
    """``src`` as another tool would write it: no jaxsr metadata (or ``meta`` instead),
    the output not named ``output``."""
    import onnx

    model = onnx.load(str(src))
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    old = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = ["sr" if o == old else o for o in node.output]
    model.graph.output[0].name = "sr"
    onnx.save(model, str(dst))


def test_onnx_files_of_other_tools_run_by_a_probed_scale(model_dirs, tmp_path, capsys):
    """Issue 38, items 6 and 11, replayed: an ONNX file without jaxsr metadata (as
    Real-ESRGAN's pytorch2onnx.py writes) gave a ValueError in upscale, and evaluate
    refused every --scale; damaged metadata, other inputs and run-time failures were
    tracebacks. Now the scale is probed, --scale is checked against it, and the rest is
    one sentence."""
    from jaxsr.evaluate import main as evaluate_main

    ours = tmp_path / "ours.onnx"
    export_lib.export_model(model_dirs["rrdbnet_x4"], "onnx", str(ours))
    foreign = tmp_path / "foreign.onnx"
    _foreign(ours, foreign)
    model = OnnxModel(str(foreign))
    assert model.scale == 4 and model.output_name == "sr"
    src = tmp_path / "in"
    write_image(str(src / "photo.png"), builtin_photo("chelsea")[:30, :41])
    for m, out in ((ours, "a"), (foreign, "b")):
        args = [f"--model={m}", f"--input={src}", f"--output={tmp_path / out}", "--tile=16"]
        assert upscale_main([*args, "--tile_overlap=4", "--backend=onnxruntime"]) == 0
    a, b = (read_image(str(tmp_path / d / "photo_x4.png")).pixels for d in "ab")
    np.testing.assert_array_equal(a, b)
    hr = tmp_path / "hr"
    write_image(str(hr / "a.png"), builtin_photo("astronaut")[:48, :40])
    base = [f"--model={foreign}", f"--data={hr}", "--backend=onnxruntime"]
    assert evaluate_main([*base, "--scale=4", f"--out={tmp_path / 'e.json'}"]) == 0
    assert evaluate_main([*base, "--scale=2", f"--out={tmp_path / 'f.json'}"]) == 2
    assert "--scale=2 but the model" in capsys.readouterr().err
    for value in ("abc", "0", "-4"):
        bad = tmp_path / f"bad{value}.onnx"
        _foreign(ours, bad, jaxsr_scale=value)
        with pytest.raises(UserError, match=f"jaxsr_scale='{value}' is not a whole number"):
            OnnxModel(str(bad))
    with pytest.raises(UserError, match=r"failed on a 40×40 input in ONNX Runtime"):
        model(np.zeros((1, 40, 40, 5), np.float32))  # 5 channels: the graph's conv refuses


@pytest.mark.parametrize("shape", [["N", "C"], ["N", 1, "H", "W"]])
def test_an_onnx_file_that_is_no_rgb_image_model_is_one_sentence(tmp_path, shape):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / "other.onnx"
    onnx.save(model, str(path))
    with pytest.raises(UserError, match=r"jaxsr runs ONNX image models of one input"):
        OnnxModel(str(path))


def test_a_discriminator_is_refused_by_export_and_upscale(tmp_path, capsys):
    """Issue 38, item 11: a converted U-Net discriminator gave an AttributeError."""
    kw = dict(num_in_ch=3, num_feat=4, skip_connection=True)
    d = build_model("unet_discriminator_sn", **kw)
    variables = d.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    save_model(str(tmp_path / "d"), "unet_discriminator_sn", kw, variables)
    write_image(str(tmp_path / "in" / "x.png"), builtin_photo("chelsea")[:20, :20])
    assert export_main([f"--model={tmp_path / 'd'}", "--format=onnx", "--out=x.onnx"]) == 2
    assert "a network that scores or encodes images" in capsys.readouterr().err
    args = [f"--model={tmp_path / 'd'}", f"--input={tmp_path / 'in'}", f"--output={tmp_path}/o"]
    assert upscale_main(args) == 2
    assert "a network that scores or encodes images" in capsys.readouterr().err


def test_nan_weights_and_a_mismatched_file_name_are_one_sentence(model_dirs, tmp_path, capsys):
    """Issue 38, item 16: NaN weights were refused as "differs by up to nan"; a StableHLO
    export named x.onnx was accepted."""
    src = model_dirs["srvgg"]
    args = [f"--model={src}", "--format=stablehlo", f"--out={tmp_path / 'x.onnx'}"]
    assert export_main(args) == 2
    assert "names a .onnx file but --format=stablehlo" in capsys.readouterr().err
    module, variables, _ = load_model_and_task(src)
    bad = jax.tree_util.tree_map(lambda v: np.full_like(v, np.nan), variables)
    save_model(str(tmp_path / "nan"), "srvgg", {"num_feat": 8, "num_conv": 2}, bad)
    out = tmp_path / "nan.onnx"
    with pytest.raises(UserError, match="itself gives NaN or infinite values"):
        export_lib.export_model(str(tmp_path / "nan"), "onnx", str(out))
    assert not out.exists()
