"""Train a recipe: ``python -m jaxsr.main --config=configs/X.py[:PRESET] --workdir=DIR``.

Any config field can be overridden, e.g. ``--config.data.batch_size=32``. The config
is saved in the workdir; rerunning the same command resumes from the newest
checkpoint. Errors the user can fix are printed as one line (exit status 2).
"""

from __future__ import annotations

import os
import re
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


def parse_flags(argv):
    """absl flag parsing with config mistakes reported as one line, not a traceback."""
    try:
        return flags.FLAGS(argv)
    except (AttributeError, KeyError, TypeError, ValueError, flags.Error) as e:
        lines = [ln.strip() for ln in str(e).replace("\\n", "\n").splitlines() if ln.strip()]
        # config_flags wraps errors raised inside get_config in a traceback; keep its last line.
        msg = (lines[-1] if "Traceback" in str(e) else " ".join(lines)).replace("\\'", "'")
        msg = msg.strip("'\"")
        if isinstance(e, AttributeError | KeyError):
            names = re.findall(r"\w+", msg)
            hint = msg[msg.find("Did you mean") :].strip() if "Did you mean" in msg else ""
            msg = f"unknown config field {names[0]!r}. {hint} See the recipe file for valid fields"
        print(f"error: {msg} (in: {' '.join(argv[1:])})", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
