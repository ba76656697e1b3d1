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

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr import files
from jaxsr.data.label_maps import resize_example, target_size
from jaxsr.errors import UserError
from jaxsr.models import build_model
from jaxsr.ops.labels import encode_labels, input_channels


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


# -- synthesis with a trained generator (python -m jaxsr.synthesize) -------------------


def load_features(path: str) -> dict[int, np.ndarray]:
    """``{class id: (K, feat_num) cluster centres}`` from ``jaxsr.pix2pixhd_features``."""
    try:
        arrays = files.load_numpy(path)
        return {int(k.split("_")[1]): np.asarray(v, np.float32) for k, v in arrays.items()}
    except (OSError, ValueError, IndexError, AttributeError) as e:
        raise UserError(f"--features={path!r} cannot be read as cluster centres ({e}).") from e


def sample_feature_map(inst: np.ndarray, centres: dict, feat_num: int, rng) -> np.ndarray:
    """``(H, W, feat_num)``: each instance painted with a random centre of its class
    (``id`` for ids < 1000, else ``id // 1000``), in increasing id order so a seed
    fixes the picture; instances of classes without centres stay 0."""
    out = np.zeros((*inst.shape, feat_num), np.float32)
    for i in np.unique(inst):
        label = int(i) if i < 1000 else int(i) // 1000
        if label in centres:
            feat = centres[label]
            out[inst == i] = feat[rng.integers(0, feat.shape[0])]
    return out


class Synthesizer:
    """A pix2pixHD generator and its input encoding: ``synth(label, inst, size_hw, rng)``
    is the photo of one label map.

    ``(name, kwargs, variables)`` describe the generator (``load_model_description``);
    ``config`` is its training run's (``label_nc``, instance maps and features come from
    it), or ``None`` for a converted model (``label_nc`` then defaults to Cityscapes' 35
    and the instance edge is inferred from the input channels). ``centres`` are the
    instance features' cluster centres (:func:`load_features`)."""

    def __init__(self, name, kwargs, variables, *, config=None, label_nc=None, centres=None):
        if name not in ("pix2pixhd_global", "pix2pixhd_local"):
            raise UserError(f"It holds a {name} model, not a pix2pixHD generator.")
        self.module, self.variables = build_model(name, **kwargs), variables
        depth = kwargs.get("n_downsampling", kwargs.get("n_downsample_global", 0))
        self.base = 2 ** (depth + kwargs.get("n_local_enhancers", 0))
        first = variables["params"].get("global", variables["params"])["conv_in"]["kernel"]
        in_ch = int(first.shape[2])
        self.feat_num = 0
        self.centres = centres
        if config is not None:
            self.label_nc = int(config.label_nc) if label_nc is None else label_nc
            self.use_instance = not config.no_instance
            self.feat_num = config.encoder.feat_num if config.instance_feat else 0
        else:
            self.label_nc = 35 if label_nc is None else label_nc
            self.use_instance = True
            if self.centres:
                self.feat_num = next(iter(self.centres.values())).shape[1]
            # The edge channel is there when one channel is left over.
            self.use_instance = in_ch - input_channels(self.label_nc, False, self.feat_num) == 1
        want = input_channels(self.label_nc, self.use_instance, self.feat_num)
        if want != in_ch:
            parts = f"label_nc={self.label_nc}" + (" + 1 edge" if self.use_instance else "")
            parts += f" + {self.feat_num} features" if self.feat_num else ""
            raise UserError(
                f"The generator takes {in_ch} input channels, but {parts} make {want}; set "
                "--label_nc to its number of classes (35 for Cityscapes), and --features for "
                "a model trained with instance features."
            )
        if self.feat_num and not self.centres:
            raise UserError(
                "This generator was trained with instance features: pass --features=FILE "
                "(cluster centres from python -m jaxsr.pix2pixhd_features)."
            )
        self._apply = jax.jit(self.module.apply)

    def __call__(self, label: np.ndarray, inst, size_hw, rng) -> np.ndarray:
        """uint8 RGB ``size_hw`` photo of one label map (+ instance map)."""
        h, w = target_size(*size_hw, "none", 0, self.base)
        maps = resize_example(
            {"label": label, **({"inst": inst} if inst is not None else {})}, (h, w)
        )
        x = encode_labels(
            jnp.asarray(maps["label"])[None],
            jnp.asarray(maps["inst"])[None] if inst is not None else None,
            self.label_nc,
        )
        if self.feat_num:
            feat = sample_feature_map(maps["inst"], self.centres, self.feat_num, rng)
            x = jnp.concatenate([x, jnp.asarray(feat)[None]], -1)
        out = np.asarray(self._apply(self.variables, x))[0]
        photo = np.clip(np.round((out + 1.0) * 127.5), 0, 255).astype(np.uint8)
        return resize_example({"image": photo}, size_hw)["image"]
