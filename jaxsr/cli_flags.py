"""The flag convention of jaxsr's command-line tools.

``python -m jaxsr.main`` and ``jaxsr.benchmark`` are absl programs (for
ml_collections' ``--config.*`` overrides); the file tools (evaluate, upscale,
convert, interpolate) use argparse. Both spell flags with underscores
(``--crop_border``, ``--self_ensemble``); the same thing has the same name in every
tool (``--model`` is a model directory or a training workdir). Older spellings
(``--self-ensemble``, ``--workdir`` in evaluate) are accepted as hidden aliases.
"""

from __future__ import annotations

import argparse
import re
import sys

from absl import flags, logging

from jaxsr.errors import EXIT_USER_ERROR


def add_flag(parser: argparse.ArgumentParser, name: str, *, aliases=(), required=False, **kw):
    """``parser.add_argument(name, **kw)`` plus hidden aliases: the dashed spelling of
    ``name`` and ``aliases``. ``required`` holds for the flag under any of its names."""
    dest = name.lstrip("-").replace("-", "_")
    container = parser.add_mutually_exclusive_group(required=True) if required else parser
    container.add_argument(name, dest=dest, **kw)
    hidden = [a for a in (name.replace("_", "-"), *aliases) if a != name]
    rest = {k: v for k, v in kw.items() if k not in ("help", "default")}
    for alias in dict.fromkeys(hidden):
        container.add_argument(
            alias, dest=dest, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **rest
        )


def number(kind=int, low=None, high=None):
    """An argparse ``type=`` that also checks the range: every numeric flag of the file
    tools is declared with one, so a value out of range (a negative tile, a zero batch)
    is one usage line naming the flag before any work starts, never a silent wrong
    result or a traceback. ``low``/``high`` are inclusive; ``None`` leaves a side open."""
    what = "an integer" if kind is int else "a number"
    bounds = (
        f"in [{low}, {high}]"
        if low is not None and high is not None
        else f">= {low}"
        if low is not None
        else f"<= {high}"
        if high is not None
        else ""
    )

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if (
            value != value
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            raise argparse.ArgumentTypeError(f"{text} is out of range: give {what} {bounds}")
        return value

    parse.__name__ = kind.__name__
    return parse


class OnlyOurInfo(logging.logging.Filter):
    """Keep INFO lines from jaxsr (progress, results); libraries only from WARNING up
    (Orbax's per-save lines, absl's and JAX's notices: the metrics go to TensorBoard,
    and the loop prints its own progress line)."""

    def filter(self, record):
        if "/orbax/" in record.pathname and record.exc_info:
            # Orbax logs each failure of its background writer with a traceback; the
            # loop reports the failure itself in one sentence.
            record.exc_info, record.exc_text = None, None
        if record.levelno >= logging.logging.WARNING:
            return True
        return "/jaxsr/" in record.pathname


class _ConsoleFormat(logging.logging.Formatter):
    """``18:50:11 message``; warnings and errors say so."""

    def format(self, record):
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        if record.levelno >= logging.logging.WARNING:
            text = f"{record.levelname.lower()}: {text}"
        return f"{self.formatTime(record, '%H:%M:%S')} {text}"


def console_logging() -> None:
    """The absl programs' console: INFO and up, jaxsr's own INFO lines only, each line
    as ``time message``."""
    logging.set_verbosity(logging.INFO)
    handler = logging.get_absl_handler()
    handler.addFilter(OnlyOurInfo())
    handler.setFormatter(_ConsoleFormat())


_HELP_FLAGS = ("--help", "-?", "--helpshort", "--helpfull", "--helpxml")


def parse_absl_flags(argv):
    """absl flag parsing with config mistakes reported as one line, not a traceback;
    ``--help`` exits with status 0 (absl's own exits with 1, as for an error)."""
    try:
        return flags.FLAGS(argv)
    except SystemExit as e:
        asked = any(a.split("=")[0] in _HELP_FLAGS for a in argv[1:])
        sys.exit(0 if asked and e.code == 1 else e.code)
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


def progress_bar(iterable=None, *, desc: str, unit: str, total: int | None = None):
    """The tools' progress bar (tqdm on stderr, gone when done): every CLI that works
    for more than a few seconds shows one."""
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit=unit, total=total, leave=False, file=sys.stderr)
