"""The one exception type users see: a message that says what is wrong and what to do.

Raised for bad input (paths, images, configs, batch sizes) and for training that
cannot continue (NaN loss). ``jaxsr.main`` and the CLIs print it as a single line
and exit with status 2 instead of a traceback from deep inside JAX. A run stopped
by SIGTERM raises :class:`Preempted` and ``jaxsr.main`` exits with status 75.
"""


class UserError(Exception):
    """Something the user can fix; ``str(err)`` is the full, actionable sentence."""


# Exit statuses of ``python -m jaxsr.main`` (README, "What jaxsr guarantees").
EXIT_USER_ERROR = 2  # bad input or a run that cannot continue; the message says why
EXIT_PREEMPTED = 75  # stopped early by SIGTERM after a checkpoint (EX_TEMPFAIL): resumable


class Preempted(Exception):
    """Training stopped early on request (SIGTERM) after writing a checkpoint; rerunning
    the same command resumes at ``step``."""

    def __init__(self, step: int):
        super().__init__(f"Stopped by SIGTERM at step {step}; rerun the command to resume.")
        self.step = step


def quiet_async_noise() -> None:
    """Drop what asynchronous libraries print about work abandoned after an error
    (Orbax's pending read/write coroutines, a closed asyncio loop): hundreds of
    "Exception ignored in <coroutine>" / "Event loop is closed" lines that would bury
    the one line that reports the error. Other unraisable errors still reach the
    default hook."""
    import inspect
    import logging
    import sys

    def hook(unraisable):
        noise = inspect.iscoroutine(unraisable.object) or "Event loop is closed" in str(
            unraisable.exc_value
        )
        if not noise:
            sys.__unraisablehook__(unraisable)

    sys.unraisablehook = hook
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)


def cli(main):
    """Decorate a CLI ``main(argv) -> int | None``: a :class:`UserError` is printed as one
    ``error: ...`` line on stderr and the exit status is 2, never a traceback."""
    import functools
    import sys

    @functools.wraps(main)
    def wrapper(argv=None) -> int:
        try:
            return main(argv) or 0
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            quiet_async_noise()
            return EXIT_USER_ERROR

    return wrapper
