"""grain input pipelines: random HR crops (plus matching LR crops for paired data).

The host only crops and flips uint8 patches; everything else (bicubic downscaling,
blur, noise) happens inside the jitted train step on the accelerator. Patches have a
fixed size, so every batch has the same shape and the step compiles once.

Each process yields its share of every global batch; the batches do not depend on
the number of processes (see :func:`batched_iterator`). The iterator is deterministic
given the seed and checkpointable (grain's iterator state is saved with the train state).
"""

from __future__ import annotations

import functools

import grain
import numpy as np
from absl import logging

from jaxsr.data.images import ImageError
from jaxsr.data.sources import describe, make_source
from jaxsr.errors import UserError


def crop_and_augment(
    example: dict,
    rng: np.random.Generator,
    *,
    patch: int,
    scale: int,
    hflip: bool,
    rot: bool,
    num_patches: int = 1,
) -> dict:
    """Random ``patch``×``patch`` HR crop (and the aligned LR crop), flips and transpose.

    ``rot`` is BasicSR's "rotation": a random vertical flip plus a random transpose,
    which with ``hflip`` covers all 8 dihedral transforms. ``num_patches > 1`` (DASR)
    crops that many patches from the same image, stacked on a new leading axis, with
    one flip/transpose for all of them: the same distribution as DASR's augmenting
    the whole image and then cropping.
    """
    gt, lq = example["gt"], example.get("lq")
    if num_patches > 1:
        h, w = gt.shape[:2]
        corners = [
            (rng.integers(0, h - patch + 1), rng.integers(0, w - patch + 1))
            for _ in range(num_patches)
        ]
        gt = np.stack([gt[y : y + patch, x : x + patch] for y, x in corners])
        flips = rng.random(3) < 0.5
        if hflip and flips[0]:
            gt = gt[:, :, ::-1]
        if rot and flips[1]:
            gt = gt[:, ::-1]
        if rot and flips[2]:
            gt = gt.transpose(0, 2, 1, 3)
        return {"gt": np.ascontiguousarray(gt)}
    if lq is not None:
        lp = patch // scale
        h, w = lq.shape[:2]
        if gt.shape[0] < h * scale or gt.shape[1] < w * scale:
            raise UserError(
                f"Paired images disagree: LR {h}x{w} ×{scale} is larger than HR "
                f"{gt.shape[0]}x{gt.shape[1]}; check lr_dir and the scale."
            )
        if min(h, w) < lp:
            raise UserError(f"An LR image of {h}x{w} is smaller than the {lp}-pixel LR patch.")
        y, x = rng.integers(0, h - lp + 1), rng.integers(0, w - lp + 1)
        lq = lq[y : y + lp, x : x + lp]
        gt = gt[y * scale : (y + lp) * scale, x * scale : (x + lp) * scale]
    else:
        h, w = gt.shape[:2]
        y, x = rng.integers(0, h - patch + 1), rng.integers(0, w - patch + 1)
        gt = gt[y : y + patch, x : x + patch]
    images = [gt] if lq is None else [gt, lq]
    flips = rng.random(3) < 0.5
    if hflip and flips[0]:
        images = [im[:, ::-1] for im in images]
    if rot and flips[1]:
        images = [im[::-1] for im in images]
    if rot and flips[2]:
        images = [im.transpose(1, 0, 2) for im in images]
    out = {"gt": np.ascontiguousarray(images[0])}
    if lq is not None:
        out["lq"] = np.ascontiguousarray(images[1])
    return out


def check_process_split(batch_size: int, process_count: int) -> None:
    if batch_size % process_count:
        raise UserError(
            f"The global batch size {batch_size} is not divisible by the {process_count} "
            "processes; choose a multiple."
        )


def batched_iterator(source, augment, data, *, seed: int, process_index: int, process_count: int):
    """The global stream of ``source``, shuffled with ``seed`` and repeated, each
    example passed through ``augment(example, rng)``, cut into global batches of
    ``data.batch_size``; this process reads only its contiguous share of each one.

    Every process sees the same global order and the same per-example random numbers
    (grain keys them by the example's global position), so a run's batches, and
    therefore its parameters, do not depend on how many processes feed it; and since
    each process's iterator position is the step count, a checkpoint's data position
    fits any process count. This is the iterator every task's training data is.
    """
    check_process_split(data.batch_size, process_count)
    ds = grain.MapDataset.source(source).seed(seed).shuffle().repeat().random_map(augment)
    # Global batch k is local batches k*P .. k*P + P - 1, in process order (the order
    # ``make_array_from_process_local_data`` stacks them in).
    ds = ds.batch(data.batch_size // process_count, drop_remainder=True)
    if process_count > 1:
        ds = ds[process_index::process_count]
    it = ds.to_iter_dataset(
        grain.ReadOptions(num_threads=data.threads, prefetch_buffer_size=max(8, data.threads))
    )
    if data.get("workers", 0) > 0:
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=data.workers))
    return it


def train_dataset(config, *, process_index: int = 0, process_count: int = 1):
    """The training ``grain.IterDataset`` yielding this process's share of each global batch."""
    data = config.data
    check_process_split(data.batch_size, process_count)
    num_patches = data.get("num_patches", 1)
    if num_patches > 1 and data.train.get("lr_dir"):
        raise UserError(
            f"data.num_patches={num_patches} crops several HR patches per image for "
            "on-device degradation; it cannot be used with paired LR folders (lr_dir)."
        )
    if data.patch_size % config.scale:
        raise UserError(
            f"The HR patch size {data.patch_size} is not divisible by the scale {config.scale}."
        )
    source = make_source(data.train, min_hr_size=data.patch_size, builtin_split="train")
    logging.info("Training on %s.", describe(source, data.train))
    augment = functools.partial(
        crop_and_augment,
        patch=data.patch_size,
        scale=config.scale,
        hflip=data.hflip,
        rot=data.rot,
        num_patches=num_patches,
    )
    return batched_iterator(
        source,
        augment,
        data,
        seed=config.seed,
        process_index=process_index,
        process_count=process_count,
    )


class EvalExamples(list):
    """``[(name, hr uint8, lr uint8 or None)]`` plus ``skipped``: the ``(name, reason)``
    of every file left out, which evaluation reports instead of scoring another image."""

    def __init__(self, items=(), skipped=()):
        super().__init__(items)
        self.skipped = list(skipped)


# Scoring an image peaks at about 120 bytes per HR pixel (measured with
# ``jaxsr.evaluate --model=bicubic`` on 4 and 16 Mpx PNGs: MATLAB bicubic and SSIM run in
# float64 on the whole image); the model's own activations come on top.
SCORING_BYTES_PER_PIXEL = 128


def available_memory() -> int | None:
    """Bytes the system can give this process now (Linux ``MemAvailable``; ``None``
    where it is not known)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def too_large_to_score(shape) -> str | None:
    """Why an HR image of ``shape`` cannot be scored in this machine's memory."""
    need = SCORING_BYTES_PER_PIXEL * shape[0] * shape[1]
    free = available_memory()
    if free is None or need <= free:
        return None
    return (
        f"{shape[1]}x{shape[0]} needs about {need / 2**30:.1f} GiB to score, more than the "
        f"{free / 2**30:.1f} GiB available; score it in crops or on a larger machine"
    )


def eval_examples(cfg, *, scale: int, strict: bool = False) -> EvalExamples:
    """The examples of an eval source, HR mod-cropped to the scale, decoded now.

    A file that cannot be decoded (or is smaller than the scale, or too large to score
    in the memory available) is left out and named in ``skipped`` with a warning;
    ``strict`` makes it an error instead.
    """
    source = make_source(cfg, min_hr_size=scale, builtin_split="eval")
    out = EvalExamples(skipped=source.skipped)
    for i in range(len(source)):
        try:
            ex = source.load(i)
        except ImageError as e:
            logging.warning("Skipping unreadable image: %s", e)
            out.skipped.append((source.names[i], str(e)))
            continue
        reason = too_large_to_score(ex["gt"].shape)
        if reason:
            logging.warning("Skipping %s: %s.", source.names[i], reason)
            out.skipped.append((source.names[i], reason))
            continue
        gt = ex["gt"]
        gt = gt[: gt.shape[0] - gt.shape[0] % scale, : gt.shape[1] - gt.shape[1] % scale]
        out.append((source.names[i], gt, ex.get("lq")))
    logging.info("Evaluating on %s.", describe(out, cfg))
    if strict and out.skipped:
        name, reason = out.skipped[0]
        raise UserError(
            f"{len(out.skipped)} evaluation image(s) cannot be used (first: {name}: {reason}); "
            "fix or remove them, or drop --strict to score the others."
        )
    if not out:
        raise UserError(f"No evaluation image could be decoded ({len(out.skipped)} skipped).")
    return out
