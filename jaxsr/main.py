"""Train a recipe: ``python -m jaxsr.main --config=configs/X.py[:PRESET] --workdir=DIR``.

Any config field can be overridden, e.g. ``--config.data.batch_size=32``. The config
is saved in the workdir; rerunning the same command resumes from the newest
checkpoint. Errors the user can fix are printed as one line (exit status 2).
"""

from __future__ import annotations

import os
import sys

# TensorFlow (used only by clu's TensorBoard writer) is chatty at import; keep its warnings.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jaxsr.errors import UserError  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Recipe config file[:preset].")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
flags.mark_flags_as_required(["config", "workdir"])


class _OnlyOurInfo(logging.logging.Filter):
    """Keep INFO lines from jaxsr and clu (progress, metrics); libraries only from WARNING up."""

    def filter(self, record):
        if record.levelno >= logging.logging.WARNING:
            return True
        return any(f"/{pkg}/" in record.pathname for pkg in ("jaxsr", "clu"))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.INFO)
    logging.get_absl_handler().addFilter(_OnlyOurInfo())
    # TensorFlow is only used by clu's TensorBoard writer; keep it off accelerators.
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")
    from jaxsr.train.loop import train_and_evaluate

    try:
        train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    except UserError as e:
        logging.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)
