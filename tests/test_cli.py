"""The evaluate and benchmark CLIs on real small images."""

import json
import os
import re

import numpy as np
import pytest
from conftest import run_jaxsr
from PIL import Image

from jaxsr import evaluate
from jaxsr.data import builtin_photo
from jaxsr.metrics import psnr, ssim
from jaxsr.ops import imresize, imresize_uint8


@pytest.fixture(scope="module")
def hr_folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("set")
    Image.fromarray(builtin_photo("astronaut")[100:203, 150:262]).save(d / "astro.png")  # 103x112
    Image.fromarray(builtin_photo("coffee")[:96, :128]).save(d / "coffee.png")
    return d


def test_bicubic_evaluation_follows_the_protocol(hr_folder, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert (
        evaluate.main(["--model=bicubic", f"--data={hr_folder}", "--scale=4", f"--out={out}"]) == 0
    )
    result = json.loads(out.read_text())
    rows = {r["image"]: r for r in result["datasets"][os.path.basename(hr_folder)]["per_image"]}
    # By hand: mod-crop 103x112 -> 100x112, MATLAB bicubic down (uint8), up, round, Y, border 4.
    hr = np.asarray(Image.open(hr_folder / "astro.png"))[:100]
    lr = imresize_uint8(hr, 1 / 4)
    up = np.clip(np.floor(imresize(lr.astype(np.float64), 4) + 0.5), 0, 255).astype(np.uint8)
    want = psnr(up, hr, crop_border=4, y_channel=True)
    assert rows["astro.png"]["bicubic"]["psnr"] == pytest.approx(want, abs=1e-9)
    assert rows["astro.png"]["bicubic"]["ssim"] == pytest.approx(
        ssim(up, hr, crop_border=4, y_channel=True), abs=1e-12
    )
    table = capsys.readouterr().out
    assert "bicubic PSNR/SSIM" in table and os.path.basename(hr_folder) in table


@pytest.mark.slow
def test_evaluate_a_trained_workdir(hr_folder, tmp_path, trained_workdir):
    workdir, _ = trained_workdir
    out = tmp_path / "m.json"
    assert evaluate.main([f"--model={workdir}", f"--data=builtin,{hr_folder}", f"--out={out}"]) == 0
    result = json.loads(out.read_text())
    assert set(result["datasets"]) == {"builtin", os.path.basename(hr_folder)}
    for r in result["datasets"].values():
        assert np.isfinite(r["model"]["psnr"]) and 0 < r["model"]["ssim"] <= 1


def test_evaluate_bad_inputs_are_one_line_errors(tmp_path, capsys):
    assert evaluate.main(["--model=bicubic", f"--data={tmp_path / 'nope'}"]) == 2
    assert "neither 'builtin' nor an existing folder" in capsys.readouterr().err
    assert evaluate.main([f"--model={tmp_path}"]) == 2
    assert "neither a jaxsr model directory" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("config", ["esrgan.py:tiny"])  # the G+D+VGG step: the widest path
def test_benchmark_reports_both_frameworks(config):
    pytest.importorskip("torch")
    proc = run_jaxsr(
        "jaxsr.benchmark", f"--config=configs/{config}", "--steps=1", "--infer_size=48", "--tile=32"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The console as jaxsr.main's: "time message" lines, no absl-format notices.
    assert not re.search(r"^[IWE]\d{4} ", proc.stderr, re.M), proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert any(line.startswith("Machine:") for line in lines)
    # The warm compile came from the persistent cache (else it reads "nan"), and the
    # input pipeline was timed.
    assert re.search(r"compile: cold \d+\.\d+ s, warm \d+\.\d+ s", proc.stdout), proc.stdout
    assert re.search(r"Input pipeline \(builtin.*: \d+\.\d+ images/s", proc.stdout)
    train = lines[lines.index(next(x for x in lines if x.startswith("Train step"))) :]
    infer = lines[lines.index(next(x for x in lines if x.startswith("Tiled inference"))) :]
    # steps/s | MP/s of jaxsr and PyTorch, and in inference the ONNX export too
    for section, col, names in (
        (train, -4, ("jaxsr (jit)", "PyTorch")),
        (infer, -2, ("jaxsr (XLA, jit)", "jaxsr ONNX (onnxruntime)", "PyTorch")),
    ):
        for name in names:
            row = next(line for line in section if line.startswith(name))
            assert float(row.split()[col]) > 0, row


def test_paper_suite_dry_run_lists_every_recipe_at_its_paper_size():
    from jaxsr.bench import suite

    text = suite.dry_run("paper")
    for recipe in ("esrgan_psnr", "esrgan", "dasr", "mirnet", "pix2pixhd", "sftgan", "spsagan"):
        assert f"configs/{recipe}.py" in text, recipe
    assert "configs/dasr.py:aniso" in text and "configs/pix2pixhd.py:local" in text
    assert "ESRGAN PSNR             bf16+scan  configs/esrgan_psnr.py    16x128²" in text
    assert "largest batch that fits" in text


def test_mfu_peaks_by_device_kind():
    from jaxsr.bench.harness import peak_tflops

    assert peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert peak_tflops("TPU v5 lite") == 197.0 and peak_tflops("TPU v4") == 275.0
    assert peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0 and peak_tflops("cpu") is None


@pytest.mark.slow
def test_tiny_suite_times_a_recipe_in_every_variant():
    proc = run_jaxsr(
        "jaxsr.benchmark", "--suite=tiny", "--only=esrgan_psnr", "--steps=1", "--budget_s=600"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("ESRGAN PSNR")]
    variants = [r.split()[3] for r in rows if "largest" not in r]
    assert variants == ["fp32", "bf16", "bf16+remat", "bf16+scan"], proc.stdout
    for r in rows[:4]:
        compile_s, warm, step_ms, img_s, tflops, mfu, mib = r.split()[4:]
        assert float(step_ms) > 0 and float(img_s) > 0 and float(tflops) >= 0
        assert mfu == "-"  # a CPU has no peak in the table
    assert rows[0].split()[5] != "-"  # the first variant's warm compile came from the cache
    assert "largest batch that fits: no device memory limit (CPU)" in proc.stdout


@pytest.mark.slow
def test_the_readme_training_command_prints_only_jaxsr_lines(tmp_path):
    """README command 1, on the tiny preset, in a fresh shell's environment: every line
    is jaxsr's own (``HH:MM:SS message``, then the closing table) — no TensorFlow/oneDNN
    notice, no clu hyperparameter or uptime line, no warning — and the progress lines
    name the stage and say that the next stage is not timed yet."""
    proc = run_jaxsr(
        "jaxsr.main",
        "--config=configs/dasr.py:tiny",
        f"--workdir={tmp_path / 'w'}",
        "--config.log_every=1",
        TF_CPP_MIN_LOG_LEVEL=None,
        TF_ENABLE_ONEDNN_OPTS=None,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = (proc.stderr + proc.stdout).splitlines()
    table = next(i for i, line in enumerate(lines) if line.startswith("Final eval"))
    ours = re.compile(r"\d\d:\d\d:\d\d (?!warning|error)\S")
    foreign = [line for line in lines[:table] if not ours.match(line)]
    assert foreign == [], "\n".join(foreign)
    assert any("(stage 1/2)" in line and "stage 2: 2 steps to go" in line for line in lines)
    assert "PSNR on Y" in lines[table] and "σ=0" in lines[table + 2]


def test_no_reference_scores_real_lr_photos_by_niqe_and_writes_pictures(tmp_path, capsys):
    import jax
    import jax.numpy as jnp

    from jaxsr.data import read_image
    from jaxsr.metrics import niqe
    from jaxsr.models import build_model
    from jaxsr.saved_model import save_model

    kw = dict(num_feat=8, num_conv=2)
    variables = build_model("srvgg", **kw).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    save_model(str(tmp_path / "m"), "srvgg", kw, variables)
    lr = tmp_path / "lr"
    lr.mkdir()
    Image.fromarray(builtin_photo("astronaut")[:64, :56]).save(lr / "a.png")
    Image.fromarray(builtin_photo("coffee")[:60, :72, 0]).save(lr / "grey.png")
    Image.fromarray(builtin_photo("coffee")[:5, :6]).save(lr / "tiny.png")  # below NIQE's size
    (lr / "broken.png").write_bytes(b"not a png")
    out, pictures = tmp_path / "nr.json", tmp_path / "look"
    args = [f"--model={tmp_path / 'm'}", f"--data={lr}", "--no_reference", f"--out={out}"]
    assert evaluate.main([*args, f"--pictures={pictures}"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    # Issue 38, item 16: "(3 photos)" counted the unscored one; the damaged file was named
    # only in the JSON, which held a bare NaN (not JSON).
    assert "no reference: NIQE (matlab" in printed and "(2 photos scored)" in printed
    assert "tiny.png: too small for NIQE" in captured.err and "broken.png: left out" in captured.err
    assert "NaN" not in out.read_text()
    r = json.loads(out.read_text())["datasets"]["lr"]
    assert [x["image"] for x in r["per_image"]] == ["a.png", "grey.png", "tiny.png"]
    assert r["per_image"][2]["model"]["niqe_matlab"] is None
    assert r["skipped"][0]["image"] == "broken.png"
    # The pictures hold exactly what was scored: bicubic | model at ×4.
    side = read_image(str(pictures / "lr_a.png")).pixels
    assert side.shape == (256, 2 * 224, 3)
    row = r["per_image"][0]
    bic, sr = side[:, :224], side[:, 224:]
    up = imresize(builtin_photo("astronaut")[:64, :56].astype(np.float64), 4.0)
    np.testing.assert_array_equal(bic, np.clip(np.floor(up + 0.5), 0, 255))  # MATLAB bicubic
    assert row["model"]["niqe_matlab"] == pytest.approx(niqe(sr, crop_border=4))
    assert row["bicubic"]["niqe_matlab"] == pytest.approx(niqe(bic, crop_border=4))
    assert evaluate.main([*args[:1], "--data=builtin", "--no_reference"]) == 2
    assert "takes folders of low-resolution photos" in capsys.readouterr().err
