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
