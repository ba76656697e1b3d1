"""ArrayRecord datasets: ``python -m jaxsr.data.prepare`` and training from its shards."""

import json
import os

import grain
import jax
import numpy as np
import pytest
from conftest import rgb, tiny_config
from flax import serialization
from PIL import Image

from jaxsr.data import read_image, write_image
from jaxsr.data.prepare import main as prepare
from jaxsr.data.records import RecordSource
from jaxsr.data.sources import make_source, source_config
from jaxsr.errors import EXIT_USER_ERROR
from jaxsr.train.loop import train_and_evaluate


def test_prepare_keeps_every_readable_image_and_reports_the_rest(odd_folder, tmp_path, capsys):
    out = str(tmp_path / "records")
    assert prepare([f"--src={odd_folder}", f"--out={out}", "--shards=2"]) == 0
    err = capsys.readouterr().err
    assert "skipped f_corrupt.png" in err and "skipped g_truncated.jpg" in err
    with open(os.path.join(out, "index.json")) as f:
        index = json.load(f)
    assert len(index["shards"]) == 2 and [n for n, _ in index["skipped"]] == [
        "f_corrupt.png",
        "g_truncated.jpg",
    ]
    # Every kept image reads back exactly as the folder loader decodes it; the tiny one
    # is kept in the records and left out by a source that needs 32-pixel patches.
    source = RecordSource(out)
    assert len(source) == 6 and "h_tiny.png" in source.names
    for i, name in enumerate(source.names):
        want = read_image(str(odd_folder / name)).rgb_uint8()
        np.testing.assert_array_equal(source[i]["gt"], want)
    # A file is stored as its own bytes where Pillow decodes it to the training pixels,
    # else as a PNG of them (16-bit: jaxsr rounds to 8 bits, Pillow truncates).
    write_image(str(odd_folder / "i_16bit_odd.png"), rgb(40, 40).astype(np.uint16) * 200)
    out = str(tmp_path / "records2")
    assert prepare([f"--src={odd_folder}", f"--out={out}"]) == 0
    with open(os.path.join(out, "index.json")) as f:
        index = json.load(f)
    stored = {}
    for data in grain.sources.ArrayRecordDataSource(
        [os.path.join(out, s) for s in index["shards"]]
    ):
        record = serialization.msgpack_restore(data)
        stored[record["name"]] = record["gt"]
    assert stored["a_rgb.png"] == (odd_folder / "a_rgb.png").read_bytes()
    assert stored["i_16bit_odd.png"] != (odd_folder / "i_16bit_odd.png").read_bytes()
    want = read_image(str(odd_folder / "i_16bit_odd.png")).rgb_uint8()
    np.testing.assert_array_equal(
        RecordSource(out)[RecordSource(out).names.index("i_16bit_odd.png")]["gt"], want
    )
    config = source_config("arrayrecord", hr_dir=out)
    assert "h_tiny.png" not in make_source(config, min_hr_size=32).names
    # A finished dataset is never written over; a missing source is one sentence.
    assert prepare([f"--src={odd_folder}", f"--out={out}"]) == EXIT_USER_ERROR
    assert prepare([f"--src={tmp_path / 'nope'}", f"--out={tmp_path / 'o2'}"]) == EXIT_USER_ERROR
    assert "exists" in capsys.readouterr().err


def test_paired_and_raw_records(tmp_path):
    hr, lr = tmp_path / "hr", tmp_path / "lr"
    hr.mkdir(), lr.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), np.uint8)).save(hr / f"{i:04d}.png")
        Image.fromarray(rng.integers(0, 256, (8, 12, 3), np.uint8)).save(lr / f"{i:04d}x4.png")
    out = str(tmp_path / "rec")
    assert prepare([f"--src={hr}", f"--lr_src={lr}", f"--out={out}", "--encoding=raw"]) == 0
    ex = RecordSource(out)[2]
    np.testing.assert_array_equal(ex["gt"], np.asarray(Image.open(hr / "0002.png")))
    np.testing.assert_array_equal(ex["lq"], np.asarray(Image.open(lr / "0002x4.png")))


@pytest.mark.slow
def test_training_from_records_resumes_bit_identically(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    rng = np.random.default_rng(1)
    for i in range(6):
        smooth = np.kron(rng.integers(0, 256, (12, 12, 3)), np.ones((4, 4, 1))).astype(np.uint8)
        Image.fromarray(smooth).save(src / f"{i}.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = str(tmp_path / "rec")
    assert prepare([f"--src={src}", f"--out={out}"]) == 0
    records = {"data.train": source_config("arrayrecord", hr_dir=out)}
    straight = train_and_evaluate(tiny_config(**records), str(tmp_path / "a"))
    train_and_evaluate(tiny_config(**records, num_train_steps=2), str(tmp_path / "b"))
    resumed = train_and_evaluate(
        tiny_config(**records), str(tmp_path / "b"), allow_config_change=True
    )
    assert int(resumed.step) == 4
    for x, y in zip(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_array_equal(x, y)
