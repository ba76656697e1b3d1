"""JAX's persistent compilation cache, on by default for training and benchmarks.

A resumed run, a second run of the same recipe, and every process of a multi-process
run load the compiled steps from disk instead of compiling them again (the full
RRDBNet GAN step takes minutes to compile on a CPU). The cache lives in
``$JAXSR_COMPILATION_CACHE`` if set (a local path or ``gs://...``; ``off`` disables
it), else ``$XDG_CACHE_HOME/jaxsr/xla`` (``~/.cache/jaxsr/xla``). Entries are keyed by
the program, the JAX/XLA version and the device, so a stale entry is never used.

:class:`CompileCounter` counts the compilations that did and did not come from it,
which the loop logs.
"""

from __future__ import annotations

import os
import threading

import jax
from absl import logging
from jax import monitoring

from jaxsr import files
from jaxsr.errors import UserError

ENV = "JAXSR_COMPILATION_CACHE"
_REQUESTS = "/jax/compilation_cache/compile_requests_use_cache"
_HITS = "/jax/compilation_cache/cache_hits"


def default_dir() -> str | None:
    """Where the cache is (``None``: switched off)."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "false", "none") else value
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxsr", "xla")


def enable(path: str | None = None) -> str | None:
    """Point JAX's persistent cache at ``path`` (default :func:`default_dir`) and cache
    every program, however quick to compile; returns the folder in use (or ``None``).

    JAX reads the folder when it first compiles something, so call this before; an
    already-set cache folder (``JAX_COMPILATION_CACHE_DIR``) is left as it is."""
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    path = default_dir() if path is None else path
    if not path:
        return None
    try:
        files.makedirs(path)  # locally the folder; on gs:// a check of the bucket
    except UserError as e:
        logging.warning("No compilation cache: %s", e)
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


class CompileCounter:
    """Counts, from its creation on, the programs compiled through the persistent cache
    and how many of them were loaded from it (JAX's monitoring events)."""

    _lock = threading.Lock()
    _counts = {_REQUESTS: 0, _HITS: 0}
    _registered = False

    def __init__(self):
        with self._lock:
            if not CompileCounter._registered:
                monitoring.register_event_listener(CompileCounter._listen)
                CompileCounter._registered = True
            self._start = dict(self._counts)

    @staticmethod
    def _listen(event: str, **kwargs) -> None:
        if event in CompileCounter._counts:
            with CompileCounter._lock:
                CompileCounter._counts[event] += 1

    @property
    def loaded(self) -> int:
        return self._counts[_HITS] - self._start[_HITS]

    @property
    def compiled(self) -> int:
        return self._counts[_REQUESTS] - self._start[_REQUESTS] - self.loaded

    def summary(self) -> str:
        folder = jax.config.jax_compilation_cache_dir
        if not folder:
            return f"no persistent compilation cache ({ENV}=off)"
        return (
            f"{self.loaded} programs loaded from the compilation cache, {self.compiled} "
            f"compiled and added to it ({folder})"
        )
