"""NIQE (jaxsr.metrics.niqe) against BasicSR 1.4.2's MATLAB-compatible implementation."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from jaxsr.data.sources import builtin_photo
from jaxsr.metrics import _aggd, niqe

# basicsr.metrics.niqe.calculate_niqe(photo[..., ::-1].astype(float64), crop_border=0)
# of BasicSR 1.4.2 (source distribution from PyPI, torch 2.13 CPU, opencv 5.0), run on
# this machine on 2026-12-01. BasicSR computes in float32 where MATLAB and jaxsr's
# default use float64; jaxsr's float32 mode follows BasicSR's arithmetic.
BASICSR = {"chelsea": 2.62552, "coffee": 4.11524, "camera": 3.15522, "rocket": 6.96915}


@pytest.mark.parametrize("name", sorted(BASICSR))
def test_niqe_matches_basicsr(name):
    photo = builtin_photo(name)
    assert niqe(photo, dtype=np.float32) == pytest.approx(BASICSR[name], abs=1e-3)
    # MATLAB's float64 arithmetic moves flat-region photos by up to 2e-3.
    assert niqe(photo) == pytest.approx(BASICSR[name], abs=3e-3)


def test_aggd_fit_recovers_the_shape():
    rng = np.random.default_rng(0)
    gauss, _, _ = _aggd(rng.normal(size=200_000))
    laplace, _, _ = _aggd(rng.laplace(size=200_000))
    assert gauss == pytest.approx(2.0, abs=0.05) and laplace == pytest.approx(1.0, abs=0.05)
    _, bl, br = _aggd(
        np.concatenate([-np.abs(rng.normal(0, 1, 10**5)), np.abs(rng.normal(0, 3, 10**5))])
    )
    assert br / bl == pytest.approx(3.0, rel=0.05)


def test_niqe_rises_with_blur_and_noise_and_needs_two_textured_blocks():
    photo = builtin_photo("coffee").astype(np.float64)
    clean = niqe(photo)
    blurred = niqe(gaussian_filter(photo, sigma=(2.5, 2.5, 0)))
    noisy = niqe(np.clip(photo + np.random.default_rng(0).normal(0, 20, photo.shape), 0, 255))
    assert blurred > clean + 1 and noisy > clean + 1, (clean, blurred, noisy)
    assert niqe(photo / 255.0, data_range=1.0) == pytest.approx(clean)
    assert niqe(photo[..., :1]) == pytest.approx(niqe(photo[..., 0]))
    with pytest.raises(ValueError, match="two 96x96 blocks"):
        niqe(photo[:90])
    with pytest.raises(ValueError, match="two 96x96 blocks"):  # one block: no covariance
        niqe(photo[:100, :100])
    with pytest.raises(ValueError, match="not flat; this image has 0"):
        niqe(np.full((192, 192, 3), 128.0))


def test_evaluate_scores_niqe_of_model_and_baseline(tmp_path, capsys):
    import json

    from jaxsr import evaluate
    from jaxsr.eval.scoring import bicubic_upscale, make_lr

    out = tmp_path / "report.json"
    assert evaluate.main(["--model=bicubic", "--data=builtin", "--niqe", f"--out={out}"]) == 0
    assert "bicubic niqe_matlab" in capsys.readouterr().out
    rows = json.loads(out.read_text())["datasets"]["builtin"]["per_image"]
    hr = builtin_photo("coffee")
    bic = bicubic_upscale(make_lr(hr[:400, :600], 4), 4, (400, 600))
    coffee = next(r for r in rows if r["image"] == "coffee")
    assert coffee["bicubic"]["niqe_matlab"] == pytest.approx(niqe(bic, crop_border=4))
    assert coffee["bicubic"]["niqe_matlab"] > niqe(hr) + 1  # bicubic blur looks unnatural


def test_training_evaluator_reports_niqe_when_configured():
    import jax

    from jaxsr.eval.evaluator import Evaluator

    hr = builtin_photo("coffee")[:200, :200]
    evaluator = Evaluator([("coffee", hr, None)], dataset="x", scale=4, niqe=True)
    assert evaluator.niqe == "matlab"  # True is the reference definition

    def nearest(lr):  # a crude model: its blockiness must score worse than bicubic
        return jax.numpy.repeat(jax.numpy.repeat(lr, 4, 1), 4, 2)

    results = evaluator.run(nearest)
    scalars = evaluator.scalars(results)
    assert scalars["eval/niqe_matlab"] > scalars["eval/niqe_matlab_bicubic"] > 0
    assert "model niqe_matlab" in evaluator.report(results, step=1)


def test_each_niqe_score_names_its_definition():
    from jaxsr.eval.scoring import score
    from jaxsr.metrics import niqe_definition

    hr = builtin_photo("coffee")[:200, :300]
    blurred = np.asarray(hr, np.float64)
    blurred[1:-1] = (blurred[:-2] + blurred[1:-1] + blurred[2:]) / 3  # any change will do
    sr = np.round(blurred).astype(np.uint8)
    kw = dict(crop_border=4, y_channel=True)
    matlab, basicsr = score(sr, hr, niqe="matlab", **kw), score(sr, hr, niqe="basicsr", **kw)
    assert "niqe" not in matlab and "niqe_basicsr" not in matlab
    assert matlab["niqe_matlab"] == pytest.approx(niqe(sr, crop_border=4))
    assert basicsr["niqe_basicsr"] == pytest.approx(niqe(sr, crop_border=4, dtype=np.float32))
    with pytest.raises(ValueError, match="matlab, basicsr"):
        niqe_definition("pyiqa")
