"""The training workdir: one writer at a time, and the config that describes its run.

A workdir is a local folder or an object-store prefix (``gs://bucket/run``); every
file goes through :mod:`jaxsr.files`.

* **One writer.** Locally ``WORKDIR/.lock`` is held with ``flock`` for the whole run and
  names the holder (pid, host, start time); the kernel drops the lock when its process
  dies, however it dies, so a lock file left by a killed run is stale by construction
  and is taken over with a note. On an object store the lock is an object made only if
  absent and refreshed while the run lives (:class:`jaxsr.files.remote.ObjectLock`);
  one not refreshed for ``LOCK_STALE_S`` is taken over with a warning. Either way a
  live holder makes a second run stop with one sentence; in a multi-process run
  process 0 holds it.
* **Config.** ``config.json`` is the config in force. A rerun whose config differs from
  it stops and lists the differing fields, unless the change is asked for
  (``--allow_config_change``); an accepted change is appended to
  ``config_history.json`` (step, field, old -> new), which also keeps the original.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket

import ml_collections
from absl import logging

from jaxsr import files
from jaxsr.errors import UserError
from jaxsr.files import remote, write_error

CONFIG_FILE, HISTORY_FILE, LOCK_FILE = "config.json", "config_history.json", ".lock"
DEVICES_FILE = "devices.json"
PARAMETERS_FILE = "parameters.txt"

# Fields that change how a run reports or is spread, not what it computes: accepted
# without asking (and still recorded). The batches, and so the run, do not depend on
# the number of processes (``distributed``); ``scan_blocks`` changes how the trunk is
# compiled, not its parameters or its result.
OPERATIONAL_FIELDS = (
    "log_every",
    "eval_every",
    "checkpoint_every",
    "keep_checkpoints",
    "distributed",
    "scan_blocks",
)


def config_dict(config) -> dict:
    """The config as plain JSON data (tuples become lists), as it is saved."""
    return json.loads(config.to_json_best_effort())


def load_config(workdir: str) -> ml_collections.ConfigDict:
    path = os.path.join(workdir, CONFIG_FILE)
    if not files.exists(path):
        raise UserError(f"{workdir!r} is not a jaxsr workdir (no {CONFIG_FILE}); check the path.")
    return ml_collections.ConfigDict(files.read_json(path, "run's config"))


def flatten(d: dict, prefix: str = "") -> dict:
    """``{'a': {'b': 1}}`` -> ``{'a.b': 1}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_changes(old: dict, new: dict) -> dict[str, tuple]:
    """``{dotted field: (old, new)}`` for every field that differs (missing = None)."""
    a, b = flatten(old), flatten(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _weight(field: str) -> tuple[int, str]:
    """Fields that say which method and network a run is come first in a refusal."""
    first = ("task", "model.name", "scale")
    if field in first:
        return first.index(field), field
    return (len(first) if field.startswith("model.") else len(first) + 1), field


# Object-store lock timing: refreshed every minute; a lock not refreshed for ten is
# taken to belong to a run that died without releasing it.
LOCK_REFRESH_S, LOCK_STALE_S = 60.0, 600.0


class Workdir:
    """Context manager: create and lock ``path`` (on the primary process), then
    check and record the config. Raises :class:`UserError` for a path that is a
    file, cannot be written, or is in use by another live run."""

    def __init__(
        self,
        path: str,
        *,
        primary: bool = True,
        lock_refresh_s: float = LOCK_REFRESH_S,
        lock_stale_s: float = LOCK_STALE_S,
    ):
        self.path, self.primary = path, primary
        self._fd = None
        self._object_lock = None
        self._lock_times = lock_refresh_s, lock_stale_s

    def __enter__(self):
        files.makedirs(self.path)
        if self.primary and files.is_remote(self.path):
            refresh, stale = self._lock_times
            self._object_lock = remote.ObjectLock(
                os.path.join(self.path, LOCK_FILE), refresh_s=refresh, stale_s=stale
            )
            self._object_lock.acquire()
        elif self.primary:
            self._lock()
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            os.close(self._fd)  # releases the flock; the file stays (removing it would race)
            self._fd = None
        if self._object_lock is not None:
            lock, self._object_lock = self._object_lock, None
            remote.bounded(lock.release, self.path, "releasing the workdir lock")

    def check_lock(self) -> None:
        """Raise if this run lost its object-store lock (called before each save)."""
        if self._object_lock is not None:
            self._object_lock.check()

    def _lock(self) -> None:
        path = os.path.join(self.path, LOCK_FILE)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise write_error(path, e) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise write_error(path, e) from e
            raise UserError(
                f"{self.path} is in use by another jaxsr run ({holder}); wait for it to end or "
                "stop it, or choose another --workdir."
            ) from None
        previous = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        if previous:
            logging.info("Took over the lock of an ended run (%s).", previous)
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {now}\n".encode(), 0)
        self._fd = fd

    def saved_config(self) -> dict | None:
        path = os.path.join(self.path, CONFIG_FILE)
        if not files.exists(path):
            return None
        return files.read_json(path, "run's config")

    def check_config(self, config, *, allow_change: bool) -> dict[str, tuple]:
        """The changes from the saved config; stop unless they are operational or allowed."""
        saved = self.saved_config()
        if saved is None:
            return {}
        changes = config_changes(saved, config_dict(config))
        asked = sorted((k for k in changes if k not in OPERATIONAL_FIELDS), key=_weight)
        if asked and not allow_change:
            shown = "; ".join(f"{k}: {changes[k][0]!r} -> {changes[k][1]!r}" for k in asked[:8])
            more = f" (and {len(asked) - 8} more)" if len(asked) > 8 else ""
            raise UserError(
                f"This config differs from the one {self.path} was trained with: {shown}{more}. "
                "Rerun with the original settings to resume, add --allow_config_change to "
                "continue with these (recorded in config_history.json), or use a new --workdir."
            )
        return changes

    def save_parameters(self, params) -> None:
        """``parameters.txt``: clu's table of every trained parameter (name, shape,
        size) and the total, the figure each model's docstring states."""
        if not self.primary:
            return
        from clu import parameter_overview

        text = parameter_overview.get_parameter_overview(params, include_stats=False)
        path = os.path.join(self.path, PARAMETERS_FILE)
        with files.atomic_path(path, ".txt") as tmp, open(tmp, "w") as f:
            f.write(text + "\n")

    def note_devices(self, devices: int, *, resumed: bool) -> None:
        """Record the run's device count (``devices.json``); a resumed run on another
        count is told that it continues, but not bit for bit: the global batch is the
        same, its reductions are split over other devices (rounding differs)."""
        if not self.primary:
            return
        path = os.path.join(self.path, DEVICES_FILE)
        before = (
            files.read_json(path, "device record").get("devices") if files.exists(path) else None
        )
        if resumed and before is not None and before != devices:
            logging.warning(
                "This run has %d devices; the checkpoint was written by a run with %d. It "
                "continues the same global batches, but not bit-identically to an "
                "uninterrupted run: the sums over the batch are split differently.",
                devices,
                before,
            )
        if before != devices:
            files.write_json_atomic(path, {"devices": devices})

    def save_config(self, config, *, step: int, resumed: bool, changes: dict) -> None:
        """Write ``config.json`` (the config in force); a resumed run records ``changes``
        at ``step`` (a fresh one has no history to keep)."""
        if not self.primary:
            return
        if resumed and changes:
            path = os.path.join(self.path, HISTORY_FILE)
            if files.exists(path):
                history = files.read_json(path, "config history")
            else:
                history = {"original": self.saved_config(), "changes": []}
            fields = {k: {"old": old, "new": new} for k, (old, new) in changes.items()}
            history["changes"].append({"step": step, "fields": fields})
            files.write_json_atomic(path, history)
            logging.warning(
                "Config changed at step %d: %s (recorded in %s).", step, ", ".join(changes), path
            )
        if changes or not resumed or self.saved_config() is None:
            files.write_json_atomic(os.path.join(self.path, CONFIG_FILE), config_dict(config))
        logging.info("Config: %s", os.path.join(self.path, CONFIG_FILE))
