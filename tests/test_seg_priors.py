"""Segmentation-prior data (SFTGAN's LRHRseg_bg): OST layout, stored .npy/.pth maps,
background mixing, aligned crops, segmenters; the category loss; per-group lr."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from PIL import Image

from jaxsr.data.seg_priors import (
    builtin_clusters,
    crop_with_prior,
    load_segmenter,
    make_seg_source,
    read_prob_map,
    seg_source_config,
    segment,
)
from jaxsr.errors import UserError
from jaxsr.losses.gan import auxiliary_classifier_loss
from jaxsr.models.sftgan import SFTNet
from jaxsr.recipes import adam_config
from jaxsr.train.optim import make_optimizer

K = 8


def _coded(h, w):
    """An image and a K-channel map that both encode each pixel's position, so a crop
    or flip that misaligns them shows."""
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([yy % 256, xx % 256, (yy * 7 + xx * 3) % 256], -1).astype(np.uint8)
    prior = np.zeros((h, w, K), np.float32)
    prior[..., 1] = img[..., 0]
    prior[..., 2] = img[..., 1]
    return img, prior


def _ost(tmp_path, bg=0):
    """hr/{building,sky}/*.png with .npy (H×W×K) and .pth (K×H×W) maps, optional bg."""
    hr, seg = tmp_path / "img", tmp_path / "bicseg"
    maps = {}
    for cat, ext, (h, w) in (("building", "npy", (40, 48)), ("sky", "pth", (44, 40))):
        (hr / cat).mkdir(parents=True)
        (seg / cat).mkdir(parents=True)
        img, prior = _coded(h, w)
        Image.fromarray(img).save(hr / cat / "a.png")
        if ext == "npy":
            np.save(seg / cat / "a.npy", prior)
        else:
            torch.save(torch.from_numpy(prior.transpose(2, 0, 1).copy()), seg / cat / "a.pth")
        maps[f"{cat}/a.png"] = prior
    cfg = seg_source_config("folder", str(hr), str(seg))
    cfg.rescales = (1.0,)
    if bg:
        (tmp_path / "bg").mkdir()
        for i in range(bg):
            Image.fromarray(np.full((40, 40, 3), 200 + i, np.uint8)).save(tmp_path / f"bg/{i}.png")
        cfg.bg_dir = str(tmp_path / "bg")
    return cfg, maps


def test_ost_layout_reads_maps_and_folder_categories(tmp_path):
    cfg, maps = _ost(tmp_path)
    source = make_seg_source(cfg, scale=4, num_classes=K, min_size=32)
    assert source.names == ["building/a.png", "sky/a.png"]
    assert source.categories == [1, 5]  # LRHRseg_bg: building 1, sky 5
    for name, item in zip(source.names, source.maps, strict=True):
        np.testing.assert_array_equal(read_prob_map(item, K), maps[name])


@pytest.mark.parametrize("hflip,rot", [(False, False), (True, True)])
def test_crops_keep_image_and_prior_aligned_on_the_scale_grid(tmp_path, hflip, rot):
    cfg, _ = _ost(tmp_path)
    source = make_seg_source(cfg, scale=4, num_classes=K, min_size=32)
    rng = np.random.default_rng(0)
    for i in range(20):
        ex = crop_with_prior(
            i % 2, rng, source=source, patch=32, scale=4, rescales=(1.0,), hflip=hflip, rot=rot
        )
        assert ex["gt"].shape == (32, 32, 3) and ex["seg"].shape == (32, 32, K)
        np.testing.assert_array_equal(ex["gt"][..., :2], ex["seg"][..., 1:3].astype(np.uint8))
        assert ex["category"] == (1 if i % 2 == 0 else 5)
        if not (hflip or rot):  # the corner sits on the LR grid (a multiple of the scale)
            assert ex["gt"][0, 0, 0] % 4 == 0 and ex["gt"][0, 0, 1] % 4 == 0


def test_background_patches_come_one_in_bg_ratio_with_a_background_prior(tmp_path):
    cfg, _ = _ost(tmp_path, bg=3)
    source = make_seg_source(cfg, scale=4, num_classes=K, min_size=32)
    rng = np.random.default_rng(1)
    n, bg = 3000, 0
    for i in range(n):
        ex = crop_with_prior(
            i % 2, rng, source=source, patch=32, scale=4, rescales=(1.0,), hflip=True, rot=False
        )
        if ex["gt"].min() >= 200:  # the flat background images
            bg += 1
            assert ex["category"] == 0
            assert (ex["seg"] == np.eye(K, dtype=np.float32)[0]).all()
    p = 1 / source.bg_ratio
    assert abs(bg / n - p) < 4 * np.sqrt(p * (1 - p) / n)


def test_rescale_shrinks_the_image_and_its_map_together(tmp_path):
    cfg, _ = _ost(tmp_path)
    source = make_seg_source(cfg, scale=4, num_classes=K, min_size=32)
    rng = np.random.default_rng(0)
    ex = crop_with_prior(
        0, rng, source=source, patch=32, scale=4, rescales=(0.5,), hflip=False, rot=False
    )
    # 40×48 × 0.5 is below the patch: LRHRseg_bg clamps each side to the patch size.
    assert ex["gt"].shape == (32, 32, 3)
    # Nearest-neighbour map rows/cols come from the original grid, in order.
    rows = ex["seg"][:, 0, 1]
    assert np.all(np.diff(rows) >= 0) and rows[-1] > rows[0]


def test_damaged_and_small_images_are_left_out_when_the_source_is_built(tmp_path):
    cfg, _ = _ost(tmp_path)
    (tmp_path / "img/building/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "img/sky/small.png")
    source = make_seg_source(cfg, scale=4, num_classes=K, min_size=32)
    assert source.names == ["building/a.png", "sky/a.png"]  # no map needed for those two


def test_missing_or_malformed_maps_are_clear_errors(tmp_path):
    cfg, _ = _ost(tmp_path)
    (tmp_path / "bicseg/sky/a.pth").unlink()
    with pytest.raises(UserError, match=r"No probability map for sky/a.png .*sky/a.npy"):
        make_seg_source(cfg, scale=4, num_classes=K, min_size=32)
    np.save(tmp_path / "bicseg/sky/a.npy", np.zeros((44, 40, 3), np.float32))
    source = make_seg_source(cfg, scale=4, num_classes=K, min_size=32)
    with pytest.raises(ValueError, match=r"must be H×W×8 or 8×H×W, found shape \(44, 40, 3\)"):
        crop_with_prior(
            1,
            np.random.default_rng(0),
            source=source,
            patch=32,
            scale=4,
            rescales=(1.0,),
            hflip=False,
            rot=False,
        )


def test_builtin_clusters_is_a_deterministic_soft_prior_at_hr_size():
    lr = np.asarray(Image.open(_sample()).convert("RGB").resize((40, 30)))
    a = builtin_clusters(lr, 4)
    assert a.shape == (120, 160, K) and a.dtype == np.float32
    np.testing.assert_allclose(a.sum(-1), 1, atol=1e-5)
    top = a.max(-1)
    assert (top < 0.9).any() and (top > 0.99).any()  # confident regions, soft edges
    assert len(np.unique(a.argmax(-1))) >= 3  # the photo's colour regions, not one class
    np.testing.assert_array_equal(a, builtin_clusters(lr, 4))


def _sample():
    import skimage.data

    return skimage.data.data_dir + "/chelsea.png"


def uniform_prior(lr, scale):
    """A plug-in segmenter (used by name below)."""
    return np.full((lr.shape[0] * scale, lr.shape[1] * scale, K), 1 / K, np.float32)


def wrong_prior(lr, scale):
    return np.zeros((lr.shape[0], lr.shape[1], K), np.float32)


def test_segmenter_plugins_load_by_name_and_are_checked():
    fn = load_segmenter("test_seg_priors:uniform_prior")
    lr = np.zeros((6, 5, 3), np.uint8)
    assert segment(fn, lr, 4, K).shape == (24, 20, K)
    with pytest.raises(UserError, match="must return finite"):
        segment(load_segmenter("test_seg_priors:wrong_prior"), lr, 4, K)
    for bad in ("nope", "no_such_module:fn", "test_seg_priors:missing"):
        with pytest.raises(UserError, match="segmenter="):
            load_segmenter(bad)


def test_category_loss_matches_torch_cross_entropy_ignoring_background():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, K)).astype(np.float32)
    labels = np.array([0, 3, 7, 0, 1, 5], np.int32)
    want = torch.nn.functional.cross_entropy(
        torch.from_numpy(logits), torch.from_numpy(labels).long(), ignore_index=0
    )
    got = auxiliary_classifier_loss(jnp.asarray(logits), jnp.asarray(labels))
    np.testing.assert_allclose(float(got), float(want), rtol=1e-6)
    assert float(auxiliary_classifier_loss(jnp.asarray(logits), jnp.zeros(6, jnp.int32))) == 0


def test_lr_groups_move_each_parameter_group_by_its_own_adam_lr():
    params = SFTNet(num_feat=8, num_block=1, cond_ch=4).init(
        jax.random.key(0), jnp.zeros((1, 4, 4, 3)), jnp.zeros((1, 16, 16, K))
    )["params"]
    cfg = adam_config(lr=1e-4, schedule="constant", lr_groups=(("SFT|Cond", 5.0),))
    tx, schedule = make_optimizer(cfg)
    grads = jax.tree.map(jnp.ones_like, params)  # Adam's first step: lr · g / (|g| + eps)
    updates, _ = tx.update(grads, tx.init(params), params)
    moved = jax.tree_util.tree_flatten_with_path(updates)[0]
    fast = 0
    for path, step in moved:
        name = "/".join(k.key for k in path)
        want = 5e-4 if ("SFT" in name or "Cond" in name) else 1e-4
        fast += want == 5e-4
        np.testing.assert_allclose(np.asarray(-step), want, rtol=1e-5, err_msg=name)
    assert fast and fast < len(moved) and float(schedule(0)) == 1e-4
    with pytest.raises(UserError, match="lr_groups"):
        make_optimizer(adam_config(lr=1e-4, schedule="constant", lr_groups=(("SFT",),)))
