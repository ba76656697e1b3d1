"""Tiled inference and the upscale CLI on odd images."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from jaxsr.data import builtin_photo, read_image, write_image
from jaxsr.models import RRDBNet
from jaxsr.ops.tiling import tiled_apply
from jaxsr.saved_model import save_model
from jaxsr.upscale import main as upscale_main

KW = dict(scale=4, num_feat=8, num_block=1, num_grow_ch=4)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("m") / "model"
    variables = RRDBNet(**KW).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    save_model(str(d), "rrdbnet", KW, variables)
    return d, variables


def test_tiled_equals_untiled_away_from_borders(model_dir):
    _, variables = model_dir
    model = RRDBNet(**KW)
    apply = jax.jit(lambda x: model.apply(variables, x))
    img = builtin_photo("coffee")[:90, :130].astype(np.float32) / 255
    whole = np.asarray(apply(img[None]))[0]
    tiled = tiled_apply(lambda t: apply(jnp.asarray(t)), img, scale=4, tile=40, overlap=16, batch=3)
    assert tiled.shape == whole.shape == (360, 520, 3)
    inner = np.abs(tiled - whole)[16:-16, 16:-16]
    assert inner.max() <= 1e-3
    # No seam: the error along tile boundaries is no larger than anywhere else.
    assert inner.max() < 10 * max(inner.mean(), 1e-7) or inner.max() < 1e-5


def test_small_image_and_single_tile(model_dir):
    _, variables = model_dir
    model = RRDBNet(**KW)
    img = np.random.default_rng(0).uniform(0, 1, (7, 9, 3)).astype(np.float32)
    out = tiled_apply(
        lambda t: model.apply(variables, jnp.asarray(t)), img, scale=4, tile=16, overlap=4, batch=2
    )
    assert out.shape == (28, 36, 3)


def test_upscale_cli_handles_gray_rgba_16bit_jpeg_and_skips_bad_files(model_dir, tmp_path, capsys):
    d, _ = model_dir
    src = tmp_path / "in"
    src.mkdir()
    rgb = builtin_photo("chelsea")[:30, :40]
    Image.fromarray(rgb).save(src / "photo.jpg")
    Image.fromarray(rgb[..., 0]).save(src / "gray.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])).save(src / "rgba.png")
    write_image(str(src / "deep.png"), rgb.astype(np.uint16) * 257)
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    code = upscale_main(
        [f"--model={d}", f"--input={src}", f"--output={out}", "--tile=16", "--tile_overlap=4"]
    )
    assert code == 1  # one file failed, the rest were written
    assert "broken.png" in capsys.readouterr().err
    shapes = {p.name: read_image(str(p)).pixels for p in out.iterdir()}
    assert set(shapes) == {"photo_x4.jpg", "gray_x4.png", "rgba_x4.png", "deep_x4.png"}
    assert shapes["gray_x4.png"].shape == (120, 160, 1)
    assert shapes["rgba_x4.png"].shape == (120, 160, 4)
    np.testing.assert_array_equal(shapes["rgba_x4.png"][..., 3], 200)  # alpha: bicubic of 200
    assert shapes["deep_x4.png"].dtype == np.uint16 and shapes["deep_x4.png"].shape == (120, 160, 3)
    assert shapes["photo_x4.jpg"].shape == (120, 160, 3)
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp")]


def test_upscale_bad_arguments_are_one_line_errors(model_dir, tmp_path, capsys):
    d, _ = model_dir
    assert (
        upscale_main([f"--model={d}", f"--input={tmp_path / 'nope'}", f"--output={tmp_path}"]) == 2
    )
    assert "nope': no such file; give an image file or a folder" in capsys.readouterr().err
    Image.fromarray(builtin_photo("chelsea")[:20, :20]).save(tmp_path / "x.png")
    assert (
        upscale_main(
            [f"--model={tmp_path}", f"--input={tmp_path / 'x.png'}", f"--output={tmp_path / 'o'}"]
        )
        == 2
    )
    assert "neither a jaxsr model directory" in capsys.readouterr().err
