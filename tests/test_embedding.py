"""The degradation-representation study (jaxsr.embedding): scores, views, the CLI."""

import json
import os

import numpy as np
import pytest
from conftest import recipe_config, run_jaxsr
from PIL import Image

from jaxsr.data.degradations import FixedDegradation
from jaxsr.data.sources import builtin_photo
from jaxsr.embedding.analysis import (
    degraded_views,
    leave_one_group_out,
    nearest_centroid_accuracy,
    separation_scores,
)


def _embeddings(content_scale, rng_seed=0):
    """3 settings × 4 photos × 10 items: one-hot degradation + a per-photo offset."""
    rng = np.random.default_rng(rng_seed)
    labels = np.tile(np.repeat(np.arange(3), 10), 4)
    photos = np.repeat(np.arange(4), 30)
    content = content_scale * rng.standard_normal((4, 3))[photos]
    return np.eye(3)[labels] + content + 0.05 * rng.standard_normal((120, 3)), labels, photos


def test_scores_separate_content_from_degradation():
    emb, labels, photos = _embeddings(content_scale=3.0)  # photo offsets > the signal
    assert nearest_centroid_accuracy(emb, labels, photos) < 0.6  # offset dominates (0.47)
    assert nearest_centroid_accuracy(emb, labels, photos, within=True) == 1.0
    centred = emb - np.stack([emb[photos == p].mean(0) for p in photos])
    assert nearest_centroid_accuracy(centred, labels, photos) == 1.0
    s = separation_scores(emb, labels, photos, ["a", "b", "c"], k=5)
    assert s["silhouette_by_photo"] > 0.5 > s["silhouette_by_degradation"]
    assert s["chance"] == pytest.approx(1 / 3)

    clean, labels, photos = _embeddings(content_scale=0.1)  # degradation dominates
    s = separation_scores(clean, labels, photos, ["a", "b", "c"], k=5)
    assert s["nearest_centroid_accuracy"] == s["knn5_accuracy"] == 1.0
    assert s["per_setting_knn5"] == {"a": 1.0, "b": 1.0, "c": 1.0}
    assert s["silhouette_by_degradation"] > 0.5 > s["silhouette_by_photo"]


def test_leave_one_photo_out_never_uses_the_test_photo():
    # Two items per photo at x = 0, 1, 3, 7 (+ 0.01 for the twin), labels 0, 1, 0, 1:
    # each item's nearest neighbour is its twin (same label), the nearest item of
    # another photo has the other label. Leaving the photo out must get all wrong.
    emb = (np.repeat([0.0, 1.0, 3.0, 7.0], 2) + np.tile([0.0, 0.01], 4))[:, None]
    labels = np.repeat([0, 1, 0, 1], 2)
    photos = np.repeat(np.arange(4), 2)
    assert list(leave_one_group_out(emb, labels, photos, k=1)) == list(1 - labels)
    # Within a photo (fit on the even, test on the odd item) the twin decides.
    within = leave_one_group_out(emb, labels, photos, k=1, within=True)
    assert list(within[1::2]) == list(labels[1::2]) and set(within[::2]) == {-1}


def test_views_show_the_same_content_under_every_setting():
    photos = [
        ("coffee", builtin_photo("coffee")[:200, :240]),
        ("rocket", builtin_photo("rocket")[:160]),
    ]
    settings = [
        FixedDegradation(sigma=0.2),
        FixedDegradation(sigma=3.6),
        FixedDegradation(sigma=0.2),
    ]
    views = degraded_views(photos, settings, scale=4, crop=16, crops_per_photo=5)
    lq, setting, photo = views["patch"]
    assert lq.shape == (2 * 3 * 5, 16, 16, 3) and lq.dtype == np.uint8
    assert list(np.bincount(photo)) == [15, 15] and list(np.bincount(setting)) == [10, 10, 10]
    same = lq[(setting == 0)], lq[(setting == 2)]  # the same σ twice: identical crops
    np.testing.assert_array_equal(*same)
    assert not np.array_equal(lq[setting == 0], lq[setting == 1])  # the blur changed them
    whole, _, _ = views["photo"]
    assert whole.shape == (2 * 3, 40, 60, 3)  # the largest LR size both photos share


def _photo_folder(path, n=6):
    path.mkdir()
    names = ["astronaut", "chelsea", "coffee", "rocket", "camera", "immunohistochemistry"]
    for name in names[:n]:
        Image.fromarray(builtin_photo(name)[:200, :200]).save(path / f"{name}.png")
    return str(path)


@pytest.mark.slow
def test_study_trains_on_some_photos_and_scores_the_others(tmp_path):
    from jaxsr.embedding.study import StudyOptions, run_study

    data = _photo_folder(tmp_path / "photos")
    # Files that are no usable photo are left out before training, not found after it.
    os.mkfifo(os.path.join(data, "fifo.png"))
    os.symlink(os.path.join(data, "loop.png"), os.path.join(data, "loop.png"))
    Image.fromarray(builtin_photo("coffee")[:1, :1]).save(os.path.join(data, "dot.png"))
    workdir = str(tmp_path / "study")
    config = recipe_config("dasr", "study,tiny")
    opts = StudyOptions(
        data=data,
        heldout=2,
        crop=12,
        crops_per_photo=4,
        sigmas=(0.2, 3.6),
        table3=True,
        noises=(0.0, 10.0),
    )
    summary = run_study(config, workdir, opts)

    with open(os.path.join(workdir, "embedding.json")) as f:
        assert json.load(f) == json.loads(json.dumps(summary))
    heldout, train = summary["heldout_photos"], summary["train_photos"]
    assert len(heldout) == 2 and len(train) == 4 and not set(heldout) & set(train)
    assert not {"fifo.png", "loop.png", "dot.png"} & set(heldout + train)
    assert sorted(os.listdir(os.path.join(workdir, "split", "train"))) == train
    with open(os.path.join(workdir, "config.json")) as f:  # the loop trained on the 4 only
        trained_on = json.load(f)["data"]["train"]["hr_dir"]
    assert trained_on == os.path.join(os.path.abspath(workdir), "split", "train")
    iso = summary["results"]["isotropic"]
    assert iso["settings"] == ["σ=0.2", "σ=3.6"]
    for who in ("trained", "random_init"):
        patch, whole = iso[who]["patch"], iso[who]["photo"]
        assert patch["items"] == 2 * 2 * 4 and whole["items"] == 2 * 2  # held-out photos only
        assert patch["chance"] == 0.5 and 0.0 <= patch["nearest_centroid_accuracy"] <= 1.0
        assert whole["within_photo_nearest_centroid"] is None  # one view per photo and σ
    with Image.open(summary["plots"]["isotropic"]) as img:
        assert img.width > 800 and img.height > 400
    table3 = summary["results"]["table3"]  # Table 3's nine kernels at two noise levels
    assert len(table3["settings"]) == 18 and "λ=2/0.2 θ=0° noise=10" in table3["settings"]
    assert table3["trained"]["patch"]["chance"] == pytest.approx(1 / 18)
    assert os.path.getsize(summary["plots"]["table3"]) > 0

    # The CLI on the trained workdir (no training), then a rerun with another split.
    common = ["--config=configs/dasr.py:study,tiny", f"--data={data}", f"--workdir={workdir}"]
    common += ["--crop=12", "--sigmas=0.2,3.6"]
    cli = ("jaxsr.embedding", *common)
    run = run_jaxsr(*cli, "--heldout=2", f"--model={workdir}")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "held-out photos" in run.stdout and "random_init" in run.stdout
    run = run_jaxsr(*cli, "--heldout=3")
    assert run.returncode == 2 and "another split" in run.stderr
