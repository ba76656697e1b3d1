"""Does DASR's encoder separate degradations? (paper Sec. 4.2, Fig. 4)

LR patches of held-out photos are degraded with a grid of isotropic blur widths σ,
embedded by the degradation encoder (eval-mode BatchNorm), and

* projected to 2-D by PCA and drawn as a scatter plot coloured by σ (dark = sharp,
  bright = blurry; the paper uses t-SNE);
* classified into three equal-width σ bins by nearest-centroid classifiers, chance 1/3:
  ``across_photos`` fits the centroids on the *other* photos (leave-one-photo-out), the
  strict test that the paper's Fig. 4 illustrates; ``across_photos_centred`` does the
  same after subtracting each photo's mean embedding (removing a per-photo content
  offset; it uses the test photo's embeddings over all σ, so it is transductive);
  ``within_photo`` fits on half of each photo's patches and tests on the other half.

Used by ``python -m jaxsr.evaluate --embedding-plot=PATH``.
"""

from __future__ import annotations

import numpy as np

from jaxsr.data.degradations import FixedDegradation
from jaxsr.data.images import write_image

# Colour ramp for the scatter plot (dark blue -> teal -> yellow, viridis-like).
_RAMP = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]])


def embed_patches(
    embed,
    photos,
    *,
    scale: int,
    sigmas,
    patches_per_image: int = 8,
    patch: int = 48,
    boundary: str = "edge",
    seed: int = 0,
):
    """``(embeddings (N, D), sigma (N,), photo index (N,))`` over photos × σ × patches."""
    rng = np.random.default_rng(seed)
    lrs = {}
    for i, (_, hr) in enumerate(photos):
        for s in sigmas:
            lrs[i, s] = FixedDegradation(sigma=float(s), boundary=boundary).apply(
                hr, scale=scale, index=i
            )
    patch = min([patch] + [min(lr.shape[:2]) for lr in lrs.values()])
    crops, sig, owner = [], [], []
    for (i, s), lr in lrs.items():
        for _ in range(patches_per_image):
            y = rng.integers(0, lr.shape[0] - patch + 1)
            x = rng.integers(0, lr.shape[1] - patch + 1)
            crops.append(lr[y : y + patch, x : x + patch])
            sig.append(s)
            owner.append(i)
    batch = np.stack(crops).astype(np.float32) / 255.0
    emb = np.concatenate([np.asarray(embed(batch[j : j + 64])) for j in range(0, len(batch), 64)])
    return emb, np.asarray(sig), np.asarray(owner)


def nearest_centroid_accuracy(
    emb: np.ndarray, labels: np.ndarray, groups: np.ndarray, *, within: bool = False
) -> float:
    """Accuracy of a nearest-centroid classifier (Euclidean): leave-one-group-out, or
    with ``within`` (or a single group) fit on even and tested on odd items per group."""
    x = emb
    folds = [(groups != g, groups == g) for g in np.unique(groups)]
    if within or len(folds) == 1:
        even = np.arange(len(x)) % 2 == 0
        folds = [(even & (groups == g), ~even & (groups == g)) for g in np.unique(groups)]
    correct = total = 0
    for train, test in folds:
        classes = np.unique(labels[train])
        centroids = np.stack([x[train & (labels == c)].mean(0) for c in classes])
        dist = np.sum((x[test][:, None, :] - centroids[None]) ** 2, axis=-1)
        pred = classes[np.argmin(dist, axis=1)]
        correct += int(np.sum(pred == labels[test]))
        total += int(test.sum())
    return correct / total


def pca_2d(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T


def scatter_png(points: np.ndarray, values: np.ndarray, path: str, size: int = 512) -> None:
    """Points coloured by value (low = dark) with a colour bar on the right; atomic PNG."""
    img = np.full((size, size + 40, 3), 255, np.uint8)
    lo, hi = points.min(0), points.max(0)
    xy = (points - lo) / np.maximum(hi - lo, 1e-12) * (size - 40) + 20
    t = (values - values.min()) / max(float(np.ptp(values)), 1e-12)
    for (x, y), v in zip(xy, t, strict=True):
        r, c = int(size - y), int(x)
        img[r - 3 : r + 4, c - 3 : c + 4] = _colour(v)
    for r in range(20, size - 20):  # colour bar: bottom = smallest value
        img[r, size + 10 : size + 30] = _colour(1.0 - (r - 20) / (size - 40))
    img[[0, -1], :size] = 160  # frame
    img[:, [0, size - 1]] = 160
    write_image(path, img)


def _colour(t: float) -> np.ndarray:
    pos = t * (len(_RAMP) - 1)
    i = min(int(pos), len(_RAMP) - 2)
    return np.round(_RAMP[i] + (pos - i) * (_RAMP[i + 1] - _RAMP[i])).astype(np.uint8)


def embedding_study(
    embed, photos, *, scale: int, out_png: str, boundary: str = "edge", seed: int = 0
) -> dict:
    """Embed, plot (``out_png``) and score; prints and returns a summary."""
    sigmas = np.round(np.linspace(0.2, float(scale), 12), 3)
    emb, sig, owner = embed_patches(
        embed, photos, scale=scale, sigmas=sigmas, boundary=boundary, seed=seed
    )
    edges = np.linspace(sigmas[0], sigmas[-1], 4)
    bins = np.clip(np.digitize(sig, edges[1:-1]), 0, 2)
    centred = emb - np.stack([emb[owner == i].mean(0) for i in owner])
    acc = {
        "across_photos": nearest_centroid_accuracy(emb, bins, owner),
        "across_photos_centred": nearest_centroid_accuracy(centred, bins, owner),
        "within_photo": nearest_centroid_accuracy(emb, bins, owner, within=True),
    }
    scatter_png(pca_2d(emb), sig, out_png)
    summary = {
        "patches": int(len(emb)),
        "photos": [name for name, _ in photos],
        "sigmas": sigmas.tolist(),
        "bins": edges.tolist(),
        "nearest_centroid_accuracy": acc,
        "chance": 1.0 / 3.0,
        "plot": out_png,
    }
    print(
        f"Degradation embedding, {len(emb)} LR patches of {len(photos)} photos × "
        f"{len(sigmas)} blur widths: nearest-centroid accuracy over 3 σ bins "
        + ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in acc.items())
        + f" (chance 0.33). PCA plot: {out_png} (dark = σ {sigmas[0]:g}, "
        f"bright = σ {sigmas[-1]:g})."
    )
    return summary
