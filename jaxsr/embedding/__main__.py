"""The degradation-representation study on a folder of photos.

    python -m jaxsr.embedding --config=configs/dasr.py:study --data=PHOTOS --workdir=DIR

trains DASR's degradation encoder (stage 1, the recipe's own training step) on all
but ``--heldout`` photos of ``PHOTOS``, then embeds the held-out photos under the
isotropic blur widths ``--sigmas`` (and with ``--table3`` the paper's Table-3
anisotropic kernels × ``--noises``) and writes ``DIR/embedding.json`` (leave-one-photo-
out accuracy per setting, chance level, silhouettes by degradation and by photo, for
the trained and a randomly initialised encoder) and ``DIR/embedding_*.png`` (PCA and
t-SNE). Any config field can be overridden (``--config.num_train_steps=12000``,
``--config.moco.queue_size=4096``, ...); rerunning resumes training. ``--model=DIR``
skips training and studies a trained workdir or a model directory (e.g. official
weights imported with ``python -m jaxsr.convert``).
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from jaxsr.cli_flags import console_logging, parse_absl_flags, progress_bar
from jaxsr.errors import EXIT_PREEMPTED, EXIT_USER_ERROR, Preempted, UserError

_CONFIG = config_flags.DEFINE_config_file("config", None, "DASR config file[:preset].")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the split, checkpoints and results.")
_DATA = flags.DEFINE_string("data", None, "Folder of photos to split, train on and evaluate on.")
_HELDOUT = flags.DEFINE_integer(
    "heldout", 16, "Photos kept out of training and evaluated.", lower_bound=1
)
_SPLIT_SEED = flags.DEFINE_integer("split_seed", 0, "Seed of the photo split.", lower_bound=0)
_SIGMAS = flags.DEFINE_string("sigmas", "0.2,1.2,2.4,3.6", "Isotropic blur widths.")
_TABLE3 = flags.DEFINE_bool(
    "table3",
    None,
    "Also the Table-3 anisotropic kernels × --noises (default: if the "
    "config trains anisotropic kernels).",
)
_NOISES = flags.DEFINE_string("noises", "0,5,10", "Noise levels (0-255) for --table3.")
_CROP = flags.DEFINE_integer(
    "crop", 48, "LR side of the patch view (the training LR patch).", lower_bound=1
)
_CROPS = flags.DEFINE_integer(
    "crops_per_photo", 8, "Patches per held-out photo and setting.", lower_bound=1
)
_MODEL = flags.DEFINE_string("model", "", "Study this trained workdir / model dir (no training).")
_ALLOW_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False, "Resume a workdir with a changed config (see jaxsr.main)."
)
flags.mark_flags_as_required(["config", "workdir", "data"])


def _progress(photos, family):
    return progress_bar(photos, desc=f"degrading ({family})", unit="photo")


def _aniso(config) -> bool:
    return config.get("degradation", {}).get("mode") == "aniso"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    console_logging()
    from jaxsr.embedding.study import StudyOptions, report, run_study
    from jaxsr.eval.protocols import parse_floats

    config = _CONFIG.value
    try:
        opts = StudyOptions(
            data=_DATA.value,
            heldout=_HELDOUT.value,
            split_seed=_SPLIT_SEED.value,
            sigmas=parse_floats(_SIGMAS.value, "--sigmas"),
            table3=_TABLE3.value if _TABLE3.value is not None else _aniso(config),
            noises=parse_floats(_NOISES.value, "--noises"),
            crop=_CROP.value,
            crops_per_photo=_CROPS.value,
        )
        summary = run_study(
            config,
            _WORKDIR.value,
            opts,
            model=_MODEL.value,
            progress=_progress,
            allow_config_change=_ALLOW_CHANGE.value,
        )
    except Preempted as e:
        logging.warning("%s", e)
        sys.exit(EXIT_PREEMPTED)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    print(report(summary))
    print(f"Wrote {os.path.join(_WORKDIR.value, 'embedding.json')}")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_absl_flags)
