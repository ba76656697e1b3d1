"""The one exception type users see: a message that says what is wrong and what to do.

Raised for bad input (paths, images, configs, batch sizes) and for training that
cannot continue (NaN loss). ``jaxsr.main`` and the CLIs print it as a single line
and exit with status 2 instead of a traceback from deep inside JAX.
"""


class UserError(Exception):
    """Something the user can fix; ``str(err)`` is the full, actionable sentence."""


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
            return 2

    return wrapper
