"""Train a recipe: ``python -m jaxsr.main --config=configs/X.py[:PRESET] --workdir=DIR``.

Any config field can be overridden, e.g. ``--config.data.batch_size=32``. The config
is saved in the workdir; rerunning the same command resumes from the newest
checkpoint (a changed config needs ``--allow_config_change``). Exit statuses: 0 done,
2 an error the user can fix (printed as one line), 75 stopped by SIGTERM after a
checkpoint (rerun to resume).
"""

from __future__ import annotations

import os
import re
import sys

# TensorFlow (used only by clu's TensorBoard writer) is chatty at import; keep its warnings.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jaxsr.errors import (  # noqa: E402
    EXIT_PREEMPTED,
    EXIT_USER_ERROR,
    Preempted,
    UserError,
    quiet_async_noise,
)

_CONFIG = config_flags.DEFINE_config_file("config", None, "Recipe config file[:preset].")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
_ALLOW_CHANGE = flags.DEFINE_bool(
    "allow_config_change",
    False,
    "Resume a workdir with a config that differs from its config.json (recorded in "
    "config_history.json).",
)
flags.mark_flags_as_required(["config", "workdir"])


class _OnlyOurInfo(logging.logging.Filter):
    """Keep INFO lines from jaxsr and clu (progress, metrics); libraries only from WARNING up."""

    def filter(self, record):
        if "/orbax/" in record.pathname and record.exc_info:
            # Orbax logs each failure of its background writer with a traceback; the
            # loop reports the failure itself in one sentence.
            record.exc_info, record.exc_text = None, None
        if record.levelno >= logging.logging.WARNING:
            return True
        return any(f"/{pkg}/" in record.pathname for pkg in ("jaxsr", "clu"))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.INFO)
    quiet_async_noise()  # a failed background write must read as one line, not hundreds
    logging.get_absl_handler().addFilter(_OnlyOurInfo())
    # TensorFlow is only used by clu's TensorBoard writer; keep it off accelerators.
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")
    from jaxsr.train.loop import train_and_evaluate

    try:
        train_and_evaluate(_CONFIG.value, _WORKDIR.value, allow_config_change=_ALLOW_CHANGE.value)
    except Preempted as e:
        logging.warning("%s", e)
        sys.exit(EXIT_PREEMPTED)
    except UserError as e:
        logging.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


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
        sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
