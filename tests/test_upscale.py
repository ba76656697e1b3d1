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


# -- issue 38, items 1-3: float TIFFs, flag ranges, EXIF orientation ----------------------


def _upscaled(model_dir, src, out, *extra):
    d, _ = model_dir
    code = upscale_main(
        [f"--model={d}", f"--input={src}", f"--output={out}", "--tile=16", "--tile_overlap=4"]
        + list(extra)
    )
    return code, {p.name: read_image(str(p)).pixels for p in out.iterdir()} if out.exists() else {}


def test_float_and_int32_tiffs_are_read_by_their_range_or_refused(model_dir, tmp_path, capsys):
    """Item 1, replayed: ``Image.fromarray(rand(16, 16).astype('f4'), 'F').save('f.tif')``
    upscaled to a nearly black image (mean 9/255). A float image in [0, 1] or in
    [0, 255] upscales exactly as the same levels in a 16-bit PNG; other ranges and
    int32 values past 16 bits are refused in one sentence, and the others go on."""
    src = tmp_path / "in"
    src.mkdir()
    x = np.random.default_rng(0).random((16, 16)).astype("f4")
    Image.fromarray(x, "F").save(src / "f.tif")
    Image.fromarray(x * 255, "F").save(src / "f255.tif")
    Image.fromarray(x * 2 - 0.5, "F").save(src / "neg.tif")
    Image.fromarray((x * 70000).astype(np.int32), "I").save(src / "big.tif")
    levels = np.floor(x.astype(np.float64) * 65535 + 0.5).astype(np.uint16)
    write_image(str(src / "ref.png"), levels[..., None])
    assert read_image(str(src / "f.tif")).pixels[..., 0].tolist() == levels.tolist()
    code, out = _upscaled(model_dir, src, tmp_path / "out")
    err = capsys.readouterr().err
    assert code == 1
    assert "neg.tif: a floating-point image with values in [-0.4" in err
    assert "big.tif: a 32-bit integer image with values in [" in err
    assert set(out) == {"f_x4.png", "f255_x4.png", "ref_x4.png"}
    np.testing.assert_array_equal(out["f_x4.png"], out["ref_x4.png"])
    assert np.abs(out["f255_x4.png"].astype(int) - out["ref_x4.png"]).max() <= 1
    assert out["f_x4.png"].dtype == np.uint16


@pytest.mark.parametrize(
    "flags,bad",
    [
        (["--tile=16", "--tile_overlap=-8"], "--tile_overlap"),
        (["--tile=-5", "--tile_overlap=-10"], "--tile"),
        (["--batch=0"], "--batch"),
        (["--batch=-1"], "--batch"),
        (["--denoise_strength=2"], "--denoise_strength"),
    ],
)
def test_numeric_flags_out_of_range_are_one_usage_line(model_dir, tmp_path, capsys, flags, bad):
    """Item 2, replayed: ``--tile=16 --tile_overlap=-8`` left 44 % of the pixels black
    with exit 0; ``--tile=-5`` ran untiled; ``--batch=0`` was a traceback."""
    d, _ = model_dir
    Image.fromarray(builtin_photo("chelsea")[:20, :20]).save(tmp_path / "x.png")
    with pytest.raises(SystemExit) as e:
        upscale_main(
            [f"--model={d}", f"--input={tmp_path / 'x.png'}", f"--output={tmp_path / 'o'}", *flags]
        )
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {bad}" in err and "out of range" in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="overlap >= 0"):
        tiled_apply(lambda t: t, np.zeros((8, 8, 3), np.float32), scale=1, tile=4, overlap=-1)


# EXIF orientation -> how viewers turn the stored pixels (TIFF/EXIF 2.3, tag 0x0112).
_VIEWED = {
    1: lambda x: x,
    3: lambda x: np.rot90(x, 2),
    6: lambda x: np.rot90(x, -1),
    8: lambda x: np.rot90(x, 1),
    2: lambda x: x[:, ::-1],
}


@pytest.mark.parametrize("orientation", sorted(_VIEWED))
def test_exif_orientation_is_applied_on_read(tmp_path, orientation):
    """Item 3: a phone photo stored landscape with "rotate 90" (orientation 6) is read
    as viewers show it, for every orientation (1: untouched), sizes included."""
    from jaxsr.data.images import image_size, verify_image

    stored = builtin_photo("chelsea")[:20, :30]
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = str(tmp_path / "o.png")
    Image.fromarray(stored).save(path, exif=exif)
    expected = _VIEWED[orientation](stored)
    np.testing.assert_array_equal(read_image(path).pixels, expected)
    assert image_size(path) == verify_image(path) == expected.shape[:2]


def test_upscaled_jpeg_with_orientation_6_shows_as_its_source(model_dir, tmp_path):
    """Item 3, replayed: a JPEG with orientation 6 upscaled to an image that viewers
    showed turned 90°. The output is upright (no tag) and portrait, as the source shows."""
    src = tmp_path / "in"
    src.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(builtin_photo("chelsea")[:20, :32]).save(src / "phone.jpg", exif=exif)
    code, out = _upscaled(model_dir, src, tmp_path / "out")
    assert code == 0
    assert out["phone_x4.jpg"].shape == (128, 80, 3)
    with Image.open(tmp_path / "out" / "phone_x4.jpg") as im:
        assert im.getexif().get(0x0112, 1) == 1


def test_tile_0_runs_the_image_at_its_own_shape_and_mirrors_small_sides():
    """Issue 38, item 12: ``--tile=0`` padded to a square of the longer side (a 10×10000
    strip needed over 25 GB), and an image below the model's smallest side stopped the
    whole run. The whole image now goes at its own shape; a side below ``min_side`` is
    mirrored up to it and the output cropped back."""
    from jaxsr.data.images import Picture
    from jaxsr.upscale import upscale_picture

    seen = []

    def apply(x):
        seen.append(x.shape)
        return np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)  # nearest ×2

    strip = np.random.default_rng(0).integers(0, 256, (6, 300, 3), np.uint8)
    out = upscale_picture(apply, Picture(strip), scale=2, tile=0, overlap=0, batch=1)
    assert seen == [(1, 6, 300, 3)] and out.pixels.shape == (12, 600, 3)
    np.testing.assert_array_equal(out.pixels[::2, ::2], strip)
    seen.clear()
    out = upscale_picture(apply, Picture(strip), scale=2, tile=0, overlap=0, batch=1, min_side=20)
    assert seen == [(1, 20, 300, 3)] and out.pixels.shape == (12, 600, 3)
    np.testing.assert_array_equal(out.pixels[::2, ::2], strip)


def test_two_inputs_with_one_output_name_are_refused_before_writing(model_dir, tmp_path, capsys):
    """Issue 38, item 13: ``x.png`` and ``x.ppm`` in one folder both map to ``x_x4.png``;
    the second was reported "kept", or with ``--overwrite`` replaced the first."""
    d, _ = model_dir
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(builtin_photo("chelsea")[:20, :20]).save(src / "x.png")
    Image.fromarray(builtin_photo("coffee")[:20, :20]).save(src / "x.ppm")
    args = [f"--model={d}", f"--input={src}", f"--output={tmp_path / 'o'}", "--tile=0"]
    assert upscale_main([*args, "--overwrite"]) == 2
    assert "would both be written to" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_grey_with_alpha_stays_grey_with_alpha(model_dir, tmp_path):
    """Issue 38, item 16: an LA (grey + alpha) image was written as RGBA."""
    src = tmp_path / "in"
    src.mkdir()
    la = np.dstack([builtin_photo("chelsea")[:20, :24, 0], np.full((20, 24), 77, np.uint8)])
    Image.fromarray(la, "LA").save(src / "la.png")
    assert read_image(str(src / "la.png")).pixels.shape == (20, 24, 2)
    code, out = _upscaled(model_dir, src, tmp_path / "out")
    assert code == 0
    assert out["la_x4.png"].shape == (80, 96, 2)
    np.testing.assert_array_equal(out["la_x4.png"][..., 1], 77)
    with Image.open(tmp_path / "out" / "la_x4.png") as im:
        assert im.mode == "LA"


def test_outscale_resizes_the_models_output_and_names_it(model_dir, tmp_path):
    """Issue 39, item 2 (images): ``--outscale=3.5`` with a ×4 model writes
    ``<stem>_x3.5`` at 3.5 × the input, the ×4 output resized by MATLAB bicubic; an
    alpha channel follows the same size."""
    from jaxsr.ops.imresize import imresize

    src = tmp_path / "in"
    src.mkdir()
    rgb = builtin_photo("chelsea")[:20, :24]
    Image.fromarray(rgb).save(src / "c.png")
    Image.fromarray(np.dstack([rgb, np.full((20, 24), 9, np.uint8)])).save(src / "a.png")
    code, four = _upscaled(model_dir, src, tmp_path / "x4")
    assert code == 0
    code, out = _upscaled(model_dir, src, tmp_path / "o", "--outscale=3.5")
    assert code == 0 and set(out) == {"c_x3.5.png", "a_x3.5.png"}
    assert out["c_x3.5.png"].shape == (70, 84, 3) and out["a_x3.5.png"].shape == (70, 84, 4)
    want = imresize(four["c_x4.png"].astype(np.float64), size=(70, 84))
    assert np.abs(out["c_x3.5.png"].astype(float) - want).max() <= 1.5  # one rounding each
    np.testing.assert_array_equal(out["a_x3.5.png"][..., 3], 9)
    code, out = _upscaled(model_dir, src, tmp_path / "o2", "--outscale=0.5")
    assert code == 0 and out["c_x0.5.png"].shape == (10, 12, 3)


def test_half_precision_tiles_that_overflow_are_redone_in_float32(tmp_path, capsys):
    """Issue 39, item 5: ``--dtype=float16`` outputs with NaN/Inf (black images in the
    PyTorch tools) are detected per tile and computed again in float32, with one notice."""
    from jaxsr.models import build_model

    kw = dict(num_feat=8, num_conv=2)
    variables = build_model("srvgg", **kw).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    # Weights that overflow float16 (max 65504) in the hidden activations.
    variables = jax.tree_util.tree_map(lambda v: v * 40.0, variables)
    save_model(str(tmp_path / "m"), "srvgg", kw, variables)
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(builtin_photo("coffee")[:24, :24]).save(src / "c.png")
    outs = {}
    for dtype in ("float32", "float16"):
        args = [f"--model={tmp_path / 'm'}", f"--input={src}", f"--output={tmp_path / dtype}"]
        assert upscale_main([*args, "--tile=12", "--tile_overlap=4", f"--dtype={dtype}"]) == 0
        outs[dtype] = read_image(str(tmp_path / dtype / "c_x4.png")).pixels
    err = capsys.readouterr().err
    assert err.count("note: float16 gave NaN or infinite values") == 1
    np.testing.assert_array_equal(outs["float16"], outs["float32"])
