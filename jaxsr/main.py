"""Train a recipe: ``python -m jaxsr.main --config=configs/X.py[:PRESET] --workdir=DIR``.

Any config field can be overridden, e.g. ``--config.data.batch_size=32``. The config
is saved in the workdir; rerunning the same command resumes from the newest
checkpoint (a changed config needs ``--allow_config_change``). Exit statuses: 0 done,
2 an error the user can fix (printed as one line), 75 stopped by SIGTERM after a
checkpoint (rerun to resume).
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from jaxsr.cli_flags import console_logging, parse_absl_flags
from jaxsr.errors import (
    EXIT_PREEMPTED,
    EXIT_USER_ERROR,
    Preempted,
    UserError,
    quiet_async_noise,
)
from jaxsr.files.remote import StorageTimeout

_CONFIG = config_flags.DEFINE_config_file("config", None, "Recipe config file[:preset].")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs and results.")
_ALLOW_CHANGE = flags.DEFINE_bool(
    "allow_config_change",
    False,
    "Resume a workdir with a config that differs from its config.json (recorded in "
    "config_history.json).",
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    console_logging()
    quiet_async_noise()  # a failed background write must read as one line, not hundreds
    from jaxsr.train.loop import train_and_evaluate

    try:
        train_and_evaluate(_CONFIG.value, _WORKDIR.value, allow_config_change=_ALLOW_CHANGE.value)
    except Preempted as e:
        logging.warning("%s", e)
        sys.exit(EXIT_PREEMPTED)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)  # once: not also through the log handler
        if isinstance(e, StorageTimeout):
            # The libraries' threads still wait on the silent server and would hold the
            # interpreter open; everything complete is stored, so end now.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_USER_ERROR)
        sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_absl_flags)
