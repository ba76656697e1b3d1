"""Embeddings of degraded photos and how well they separate the degradations.

Everything here is numpy on the host: the encoder is passed in as a function
``embed(lq (N, h, w, 3) in [0, 1]) -> (N, D)``.

The scores answer "does the encoder tell degradations apart on photos it never saw?"
(DASR, Sec. 4.2 / Fig. 4: embeddings cluster by degradation, not by content):

* leave-one-photo-out nearest-centroid and k-NN accuracy of the degradation class:
  the test photo's embeddings are classified using only the *other* photos'
  embeddings, so a content cue cannot help (chance = 1 / number of settings);
* silhouette scores of the same embeddings grouped by degradation and by photo: an
  encoder that separates content more than blur has the second higher.
"""

from __future__ import annotations

import numpy as np


def degraded_views(photos, settings, *, scale: int, crop: int, crops_per_photo: int, seed: int = 0):
    """LR views of every photo under every setting.

    Returns ``{'patch': (lq (N, crop, crop, 3) uint8, setting (N,), photo (N,)),
    'photo': ...}``: ``patch`` holds ``crops_per_photo`` LR crops per photo and
    setting, at the same positions under every setting (so the settings see the same
    content); ``photo`` holds one centre crop per photo and setting, of the largest
    size all photos share (the whole-image embedding the paper uses at test time).
    """
    rng = np.random.default_rng(seed)
    lrs = [
        [s.apply(hr, scale=scale, index=i) for s in settings] for i, (_, hr) in enumerate(photos)
    ]
    h = min(views[0].shape[0] for views in lrs)
    w = min(views[0].shape[1] for views in lrs)
    crop = min(crop, h, w)
    patch, whole = ([], [], []), ([], [], [])
    for i, views in enumerate(lrs):
        ph, pw = views[0].shape[:2]
        ys, xs = range(0, ph - crop + 1, crop), range(0, pw - crop + 1, crop)
        grid = [(y, x) for y in ys for x in xs]
        picks = rng.choice(len(grid), size=min(crops_per_photo, len(grid)), replace=False)
        top, left = (ph - h) // 2, (pw - w) // 2
        for j, lr in enumerate(views):
            for k in sorted(picks):
                y, x = grid[k]
                _append(patch, lr[y : y + crop, x : x + crop], j, i)
            _append(whole, lr[top : top + h, left : left + w], j, i)
    return {
        name: tuple(np.asarray(v) for v in (np.stack(a), b, c))
        for name, (a, b, c) in (("patch", patch), ("photo", whole))
    }


def _append(lists, image, setting, photo):
    for lst, v in zip(lists, (image, setting, photo), strict=True):
        lst.append(v)


def embed_all(embed, lq_uint8: np.ndarray, batch: int = 64) -> np.ndarray:
    """``embed`` over ``lq_uint8`` in fixed-size batches (the last one padded), so a
    jitted encoder compiles once per view size."""
    x = lq_uint8.astype(np.float32) / 255.0
    size, out = min(batch, len(x)), []
    for i in range(0, len(x), size):
        chunk = x[i : i + size]
        n = len(chunk)  # BatchNorm is in eval mode: the zero padding changes nothing else
        chunk = np.concatenate([chunk, np.zeros((size - n, *chunk.shape[1:]), chunk.dtype)])
        out.append(np.asarray(embed(chunk))[:n])
    return np.concatenate(out).astype(np.float64)


def leave_one_group_out(emb, labels, groups, *, k: int = 0, within: bool = False) -> np.ndarray:
    """Predicted labels, each from the items of the *other* groups only: the nearest
    class centroid (``k = 0``) or the majority of the ``k`` nearest items (Euclidean).
    ``within`` (or a single group) instead fits on the even and tests on the odd items
    of each group; the even items are then returned as -1."""
    pred = np.full(len(labels), -1)
    folds = [(groups != g, groups == g) for g in np.unique(groups)]
    if within or len(folds) == 1:
        even = np.arange(len(emb)) % 2 == 0
        folds = [(even & (groups == g), ~even & (groups == g)) for g in np.unique(groups)]
    for train, test in folds:
        if k:
            dist = _sq_dist(emb[test], emb[train])
            nearest = labels[train][np.argsort(dist, axis=1)[:, :k]]
            pred[test] = [np.bincount(row).argmax() for row in nearest]
        else:
            classes = np.unique(labels[train])
            centroids = np.stack([emb[train & (labels == c)].mean(0) for c in classes])
            pred[test] = classes[np.argmin(_sq_dist(emb[test], centroids), axis=1)]
    return pred


def _sq_dist(a, b):
    return (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None]


def nearest_centroid_accuracy(emb, labels, groups, *, within: bool = False) -> float:
    """Accuracy of the leave-one-group-out nearest-centroid classifier (see above)."""
    pred = leave_one_group_out(emb, labels, groups, within=within)
    tested = pred >= 0
    return float(np.mean(pred[tested] == labels[tested]))


def silhouette(emb: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Euclidean) of ``emb`` grouped by ``labels``: 1 = tight separate
    clusters, 0 = overlapping, < 0 = items closer to another group."""
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(emb, labels)) if 1 < len(np.unique(labels)) < len(emb) else 0.0


def separation_scores(emb, setting, photo, names, *, k: int = 5) -> dict:
    """Cross-photo accuracies (overall and per setting), chance and silhouettes."""
    centroid = leave_one_group_out(emb, setting, photo)
    knn = leave_one_group_out(emb, setting, photo, k=k)
    # Within a photo needs two views of each (photo, setting): one to fit, one to test.
    within = leave_one_group_out(emb, setting, photo, within=True)
    tested = within >= 0
    repeated = np.min(np.unique(np.stack([setting, photo]), axis=1, return_counts=True)[1]) > 1
    counts = np.bincount(setting, minlength=len(names))
    return {
        "items": int(len(emb)),
        "nearest_centroid_accuracy": float(np.mean(centroid == setting)),
        f"knn{k}_accuracy": float(np.mean(knn == setting)),
        "per_setting_nearest_centroid": {
            n: float(np.mean(centroid[setting == j] == j)) for j, n in enumerate(names)
        },
        f"per_setting_knn{k}": {
            n: float(np.mean(knn[setting == j] == j)) for j, n in enumerate(names)
        },
        "within_photo_nearest_centroid": (
            float(np.mean(within[tested] == setting[tested])) if repeated else None
        ),
        "chance": float(counts.max() / counts.sum()),
        "silhouette_by_degradation": silhouette(emb, setting),
        "silhouette_by_photo": silhouette(emb, photo),
    }


def pca_2d(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return x @ vt[:2].T


def tsne_2d(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """scikit-learn's t-SNE (PCA init, perplexity scaled down for small sets)."""
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 4)))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
