"""Evaluation of label-to-photo synthesis (pix2pixHD).

The paper scores Cityscapes results with a pretrained segmentation network (PSPNet
pixel accuracy / mIoU), which cannot be downloaded here. What jaxsr measures instead,
on held-out label maps with their real photos: the L1 distance (RGB in [0, 1]) and the
pix2pixHD VGG distance (its training loss's VGG term: weighted L1 of VGG19 ``relu1_1 …
relu5_1`` features, [-1, 1] inputs) of the synthesised photo to the real one, beside
the same numbers for a baseline that paints each class with its mean training colour.
A model that learned nothing beyond the class colours does not beat that baseline.
"""

from __future__ import annotations

import numpy as np


def class_mean_colors(examples, label_nc: int) -> np.ndarray:
    """``(label_nc, 3)`` mean RGB (uint8 scale) of each class over ``examples``
    (``{'label', 'image'}`` dicts); classes never seen get mid-grey."""
    sums = np.zeros((max(label_nc, 1), 3))
    counts = np.zeros(max(label_nc, 1))
    for ex in examples:
        if not label_nc:
            break
        label = ex["label"].ravel()
        image = ex["image"].reshape(-1, 3).astype(np.float64)
        counts += np.bincount(label, minlength=label_nc)
        for c in range(3):
            sums[:, c] += np.bincount(label, weights=image[:, c], minlength=label_nc)
    colors = np.full((max(label_nc, 1), 3), 127.5)
    seen = counts > 0
    colors[seen] = sums[seen] / counts[seen, None]
    return colors.astype(np.float32)


class SynthesisEvaluator:
    """Score ``predict(batch) -> photo in [0, 1]`` on ``examples`` (``[(name, example)]``,
    examples as the training pipeline makes them, one per batch). Same interface as
    :class:`jaxsr.eval.evaluator.Evaluator`: ``run``, ``scalars``, ``images``, ``report``."""

    baseline = "class_mean"

    def __init__(self, examples, colors, *, vgg_distance=None, dataset: str = "eval"):
        self.examples, self.colors = examples, colors
        self.vgg_distance, self.dataset = vgg_distance, dataset

    def paint(self, example) -> np.ndarray:
        """The baseline: each pixel the mean training colour of its class, [0, 1]."""
        label = example["label"]
        if label.ndim == 3:  # RGB label images (label_nc 0): the label image itself
            return label.astype(np.float32) / 255.0
        return self.colors[label] / 255.0

    def _scores(self, out: np.ndarray, real: np.ndarray) -> dict:
        scores = {"l1": float(np.mean(np.abs(out - real)))}
        if self.vgg_distance is not None:
            scores["vgg"] = self.vgg_distance(out[None] * 2 - 1, real[None] * 2 - 1)
        return scores

    def run(self, predict, keep_outputs: int = 1) -> dict:
        model, base, outputs = [], [], []
        for i, (_, ex) in enumerate(self.examples):
            batch = {k: v[None] for k, v in ex.items()}
            out = np.clip(np.asarray(predict(batch))[0], 0.0, 1.0)
            real = ex["image"].astype(np.float32) / 255.0
            painted = self.paint(ex)
            model.append(self._scores(out, real))
            base.append(self._scores(painted, real))
            if i < keep_outputs:
                outputs.append((painted, out, real))
        mean = lambda rows: {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}  # noqa: E731
        return {"model": mean(model), self.baseline: mean(base), "outputs": outputs}

    def scalars(self, results: dict) -> dict[str, float]:
        out = {f"eval/{k}": v for k, v in results["model"].items()}
        out.update({f"eval/{k}_{self.baseline}": v for k, v in results[self.baseline].items()})
        return out

    def images(self, results: dict) -> dict[str, np.ndarray]:
        """``label (painted in class colours) | generated | real`` of the first example."""
        if not results["outputs"]:
            return {}
        grid = np.concatenate(results["outputs"][0], 1)
        return {"eval/label_generated_real": grid[None]}

    def report(self, results: dict, step: int) -> str:
        metrics = list(results["model"])
        head = f"{'':<28}" + "".join(f"{m.upper() + ' ↓':>12}" for m in metrics)
        rows = [
            f"Final eval at step {step}: {len(self.examples)} held-out label maps "
            f"({self.dataset}), distance to the real photos",
            head,
        ]
        for key, title in (("model", "pix2pixHD"), (self.baseline, "class mean colour")):
            rows.append(f"{title:<28}" + "".join(f"{results[key][m]:>12.4f}" for m in metrics))
        better = [m for m in metrics if results["model"][m] < results[self.baseline][m]]
        rows.append(
            "Model beats the class-mean baseline on: " + (", ".join(better) if better else "none")
        )
        return "\n".join(rows)
