"""Image files, sources and the grain pipeline, including every kind of bad input."""

import logging
import os

import ml_collections
import numpy as np
import pytest
from conftest import rgb, tiny_config
from PIL import Image

from jaxsr.data import read_image, write_image
from jaxsr.data.pipeline import crop_and_augment, eval_examples, train_dataset
from jaxsr.data.sources import make_source
from jaxsr.errors import UserError


def folder_cfg(hr_dir, lr_dir=""):
    return ml_collections.ConfigDict(
        {"kind": "folder", "hr_dir": str(hr_dir), "lr_dir": str(lr_dir), "max_images": 0}
    )


def test_odd_images_are_read_or_skipped_with_one_warning_each(odd_folder, caplog):
    caplog.set_level(logging.WARNING)
    source = make_source(folder_cfg(odd_folder), min_hr_size=32)
    # The scan reads every file through: the corrupt PNG and the truncated JPEG (whose
    # header is intact) are left out up front, the tiny one is smaller than the patch.
    assert source.names == ["a_rgb.png", "b_gray.png", "c_rgba.png", "d_palette.png", "e_16bit.png"]
    text = caplog.text
    for name in ("f_corrupt.png", "g_truncated.jpg", "h_tiny.png"):
        assert name in text
    assert "smaller than the 32-pixel minimum" in text and "5 usable, 3 skipped" in text
    assert [n for n, _ in source.skipped] == ["f_corrupt.png", "g_truncated.jpg", "h_tiny.png"]
    for i in range(5):
        assert source[i]["gt"].shape == (64, 64, 3) and source[i]["gt"].dtype == np.uint8


def test_16bit_png_keeps_its_depth(tmp_path):
    px = np.arange(4 * 5 * 3, dtype=np.uint16).reshape(4, 5, 3) * 1000
    write_image(str(tmp_path / "x.png"), px)
    pic = read_image(str(tmp_path / "x.png"))
    assert pic.bit_depth == 16
    np.testing.assert_array_equal(pic.pixels, px)
    np.testing.assert_allclose(pic.rgb_float(), px / 65535.0, atol=1e-7)


def test_empty_and_missing_datasets_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no usable images"):
        make_source(folder_cfg(tmp_path / "empty"), min_hr_size=32)
    with pytest.raises(UserError, match="not found.*no such folder"):
        make_source(folder_cfg(tmp_path / "missing"), min_hr_size=32)
    with pytest.raises(UserError, match="Unknown data kind 'flder'"):
        make_source(ml_collections.ConfigDict({"kind": "flder"}))


def test_all_images_too_small_is_a_clear_error(tmp_path):
    d = tmp_path / "small"
    d.mkdir()
    Image.fromarray(rgb(20, 20)).save(d / "x.png")
    with pytest.raises(UserError, match="at least 32x32"):
        make_source(folder_cfg(d), min_hr_size=32)


def test_paired_crops_stay_aligned_through_flips():
    lq = rgb(10, 12)
    gt = np.repeat(np.repeat(lq, 4, 0), 4, 1)  # HR = nearest ×4 of LR, so alignment is checkable
    for seed in range(20):
        out = crop_and_augment(
            {"gt": gt, "lq": lq},
            np.random.default_rng(seed),
            patch=16,
            scale=4,
            hflip=True,
            rot=True,
        )
        assert out["gt"].shape == (16, 16, 3) and out["lq"].shape == (4, 4, 3)
        np.testing.assert_array_equal(np.repeat(np.repeat(out["lq"], 4, 0), 4, 1), out["gt"])


def test_paired_folders_match_by_name_and_feed_the_pipeline(tmp_path):
    (tmp_path / "hr").mkdir()
    (tmp_path / "lr").mkdir()
    for i in range(3):
        lq = rgb(12, 12, seed=i)
        Image.fromarray(np.repeat(np.repeat(lq, 4, 0), 4, 1)).save(tmp_path / "hr" / f"{i:04d}.png")
        Image.fromarray(lq).save(tmp_path / "lr" / f"{i:04d}x4.png")  # DIV2K naming
    config = tiny_config()
    config.data.train = folder_cfg(tmp_path / "hr", tmp_path / "lr")
    batch = next(iter(train_dataset(config)))
    assert batch["gt"].shape == (8, 32, 32, 3) and batch["lq"].shape == (8, 8, 8, 3)
    up = np.repeat(np.repeat(batch["lq"], 4, 1), 4, 2)
    np.testing.assert_array_equal(up, batch["gt"])


def test_pipeline_is_deterministic_and_the_same_for_any_process_count():
    config = tiny_config()
    a = next(iter(train_dataset(config)))
    b = next(iter(train_dataset(config)))
    np.testing.assert_array_equal(a["gt"], b["gt"])
    single = iter(train_dataset(config))
    steps = [next(single)["gt"] for _ in range(3)]
    for count in (2, 4):
        shares = [
            iter(train_dataset(config, process_index=p, process_count=count)) for p in range(count)
        ]
        for step in steps:
            parts = [next(it)["gt"] for it in shares]
            assert parts[0].shape == (8 // count, 32, 32, 3)
            # Process p holds rows p*B/P .. of every global batch, crops and flips included.
            np.testing.assert_array_equal(np.concatenate(parts), step)
    with pytest.raises(UserError, match="not divisible by the 3 processes"):
        train_dataset(config, process_count=3)


def test_builtin_split_is_fixed_and_disjoint():
    from jaxsr.data import BUILTIN_EVAL, BUILTIN_TRAIN

    assert not set(BUILTIN_TRAIN) & set(BUILTIN_EVAL)
    ex = eval_examples(ml_collections.ConfigDict({"kind": "builtin"}), scale=4)
    assert [name for name, _, _ in ex] == list(BUILTIN_EVAL)
    assert all(hr.shape[0] % 4 == 0 and hr.shape[1] % 4 == 0 for _, hr, _ in ex)


def test_write_image_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    write_image(str(target), rgb(8, 8))
    before = target.read_bytes()

    def broken_save(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(UserError, match="Could not write .*out.png: disk full"):
        write_image(str(target), rgb(8, 8, seed=1))
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.png"]  # no temporary file left behind
