"""Orbax checkpoints of the train state together with the data iterator's position.

Layout: ``WORKDIR/checkpoints/<step>/{state,data}``. Orbax writes each step into a
temporary directory and renames it when complete, so a killed run never leaves a
half-written checkpoint; the newest complete one is restored on restart, including
the grain iterator state, so a resumed run sees exactly the batches the uninterrupted
run would have seen.
"""

from __future__ import annotations

import json
import logging as std_logging
import os
import re

import grain
import jax
import orbax.checkpoint as ocp
from absl import logging
from etils import epath

from jaxsr import files
from jaxsr.errors import UserError, quiet_async_noise
from jaxsr.files import remote


class _NoItemMetadataNote(std_logging.Filter):
    """Orbax warns that an item folder has no ``_CHECKPOINT_METADATA`` each time its
    metadata is read; only the step folder has one, so the note says nothing."""

    def filter(self, record):
        return "Metadata file does not exist" not in record.getMessage()


std_logging.getLogger("absl").addFilter(_NoItemMetadataNote())


def checkpoint_dir(workdir: str) -> str:
    # gs://: Orbax writes object stores through epath (metadata) and TensorStore (arrays).
    return os.path.join(files.absolute(workdir), "checkpoints")


_PROCESS_FILE = re.compile(r"process_(\d+)-of-(\d+)\.json$")


def saved_data_positions(step_dir: str) -> dict[int, dict[int, str]]:
    """``{process count: {process index: iterator state json}}`` in a step's ``data``
    folder (grain writes one file per process)."""
    data = epath.Path(step_dir) / "data"
    found: dict[int, dict[int, str]] = {}
    if not data.is_dir():
        return found
    for f in data.iterdir():
        m = _PROCESS_FILE.match(f.name)
        if m:
            found.setdefault(int(m.group(2)), {})[int(m.group(1))] = f.read_text()
    return found


def _path_key(path) -> tuple[str, ...]:
    """A tree path as plain names, the same for a TrainState and Orbax's metadata tree."""
    return tuple(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def _shapes(tree) -> dict[tuple[str, ...], tuple]:
    """``path -> (shape, dtype)``; typed PRNG keys as the raw uint32 data Orbax stores."""
    out = {}
    for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if jax.dtypes.issubdtype(v.dtype, jax.dtypes.prng_key):
            v = jax.eval_shape(jax.random.key_data, v)
        out[_path_key(path)] = (tuple(v.shape), str(v.dtype))
    return out


class Checkpointer:
    """Thin wrapper over ``ocp.CheckpointManager`` (keep the newest ``keep`` steps).

    Restoring falls back past checkpoints that cannot be read (e.g. written over by a
    second run before workdir locking existed, or damaged on disk): each is named in a
    warning and moved to ``WORKDIR/checkpoints_unreadable/`` so that the run can write
    that step again. A checkpoint that reads but does not fit the state is a different
    config, reported as such.
    """

    def __init__(self, workdir: str, keep: int = 3):
        self.directory = checkpoint_dir(workdir)
        self.manager = self._manager(keep)
        self._keep = keep

    def _bounded(self, fn, doing: str):
        """``fn()`` given at most ``$JAXSR_STORAGE_TIMEOUT`` on an object store: Orbax's
        reads and listings wait on the server as its writes do."""
        return remote.bounded(fn, self.directory, doing)

    def _manager(self, keep: int):
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        return self._bounded(
            lambda: ocp.CheckpointManager(self.directory, options=options),
            "opening the checkpoints",
        )

    def latest_step(self) -> int | None:
        return self._bounded(self.manager.latest_step, "listing the checkpoints")

    def save(self, step: int, state, data_iterator=None) -> None:
        args = {"state": ocp.args.StandardSave(state)}
        if data_iterator is not None:
            args["data"] = grain.checkpoint.CheckpointSave(data_iterator)
        try:
            remote.bounded(
                lambda: self.manager.save(step, args=ocp.args.Composite(**args), force=True),
                self.directory,
                f"writing the checkpoint of step {step}",
            )
        except UserError:
            raise
        except Exception as e:
            raise self._write_failure(e) from e

    def _mismatch(self, step: int, template) -> list[str] | None:
        """How the saved state differs from ``template``; ``None`` if unreadable."""
        try:
            saved = ocp.StandardCheckpointer().metadata(
                os.path.join(self.directory, str(step), "state")
            )
            saved = _shapes(getattr(saved, "item_metadata", saved))
        except Exception:  # any failure to read the metadata: unreadable
            return None
        if ("step",) not in saved:  # every TrainState has one: damaged metadata
            return None
        want = _shapes(template)
        diff = [f"{'/'.join(k)} missing in the checkpoint" for k in want if k not in saved]
        diff += [f"{'/'.join(k)} not in this config's state" for k in saved if k not in want]
        diff += [
            f"{'/'.join(k)}: checkpoint {saved[k][0]} {saved[k][1]}, config {want[k][0]} "
            f"{want[k][1]}"
            for k in want
            if k in saved and saved[k] != want[k]
        ]
        return diff

    def _state_reads(self, step: int, abstract) -> bool:
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        try:
            self.manager.restore(step, args=args)
        except Exception:  # unreadable
            return False
        return True

    def _data_position_reads(self, step: int) -> bool:
        """Whether ``step`` holds a readable data position for this process: one that
        reads but does not fit is another data config; a missing or garbled one is a
        damaged checkpoint."""
        try:
            saved = saved_data_positions(os.path.join(self.directory, str(step)))
            json.loads(saved[jax.process_count()][jax.process_index()])
        except (OSError, KeyError, ValueError):
            return False
        return True

    def _set_aside(self, step: int) -> str:
        """Move an unreadable step out of the manager's folder (never delete it)."""
        aside = os.path.join(os.path.dirname(self.directory), "checkpoints_unreadable")
        target = os.path.join(aside, str(step))
        n = 1
        while files.exists(target):
            target, n = os.path.join(aside, f"{step}.{n}"), n + 1
        files.move_aside(os.path.join(self.directory, str(step)), target)
        self.manager.close()
        self.manager = self._manager(self._keep)
        return target

    def _other_process_count(self, step: int) -> tuple[int, dict[int, str]] | None:
        """``(process count, data positions)`` of ``step`` if it was written by another
        number of processes than this run has (none of this run's files exist)."""
        saved = saved_data_positions(os.path.join(self.directory, str(step)))
        if not saved or jax.process_count() in saved:
            return None
        written = max(saved)
        return written, saved[written]

    def _adopt_data_position(self, step: int, other: tuple[int, dict[int, str]], data_iterator):
        """Continue the data stream of a run with another process count. The pipeline's
        batches do not depend on the count (``jaxsr.data.pipeline.batched_iterator``),
        and each process's position is the number of batches taken, so every process
        takes the position the old processes agreed on."""
        written, positions = other
        if len(positions) != written or len(set(positions.values())) != 1:
            raise UserError(
                f"The checkpoint at step {step} was written by {written} processes whose "
                f"data positions are missing or differ, so it cannot be resumed with "
                f"{jax.process_count()}; resume it with {written} processes."
            )
        try:
            data_iterator.set_state(json.loads(next(iter(positions.values()))))
        except Exception as e:  # a state of another pipeline layout (e.g. data.workers)
            raise UserError(
                f"The data position saved at step {step} by {written} processes does not fit "
                f"this run's {jax.process_count()}-process pipeline ({type(e).__name__}: "
                f"{str(e)[:150]}); resume it with {written} processes."
            ) from e
        logging.warning(
            "The checkpoint at step %d was written by %d processes; this run has %d and "
            "continues the same global batch stream.",
            step,
            written,
            jax.process_count(),
        )

    def restore(self, state_template, data_iterator=None):
        """Restore the newest readable checkpoint into the shapes/shardings of
        ``state_template``; returns the state (``None`` if there is no checkpoint)."""
        steps = self._bounded(self.manager.all_steps, "listing the checkpoints")
        for step in sorted(steps, reverse=True):
            abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_template)
            args = {"state": ocp.args.StandardRestore(abstract)}
            other = None if data_iterator is None else self._other_process_count(step)
            if data_iterator is not None and other is None:
                args["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
            try:
                restored = self._bounded(
                    lambda a=args, s=step: self.manager.restore(s, args=ocp.args.Composite(**a)),
                    f"reading the checkpoint of step {step}",
                )
                state = restored["state"]
                if other is not None:
                    self._adopt_data_position(step, other, data_iterator)
                return state
            except UserError:
                raise
            except Exception as e:  # classified below
                quiet_async_noise()  # the failed read's coroutines complain at exit
                error = f"{type(e).__name__}: {str(e).split('. See full')[0][:200]}"
                mismatch = self._mismatch(step, state_template)
            if mismatch:
                raise UserError(
                    f"The checkpoint at step {step} in {self.directory} was made with a "
                    f"different config ({'; '.join(mismatch[:3])}); rerun with that run's "
                    "config (its config.json) or use a new --workdir."
                )
            if (
                mismatch is not None
                and data_iterator is not None
                and self._data_position_reads(step)
                and self._state_reads(step, abstract)
            ):
                raise UserError(
                    f"The data pipeline's position saved at step {step} in {self.directory} "
                    f"does not fit this data config ({error}); rerun with that run's data "
                    "settings (its config.json) or use a new --workdir."
                )
            aside = self._set_aside(step)
            logging.warning(
                "The checkpoint at step %d cannot be read (%s); moved it to %s and trying the "
                "one before.",
                step,
                error,
                aside,
            )
        return None

    def wait(self) -> None:
        """Block until the checkpoint in flight is on disk."""
        try:
            remote.bounded(
                self.manager.wait_until_finished, self.directory, "finishing a checkpoint"
            )
        except UserError:
            raise
        except Exception as e:
            raise self._write_failure(e) from e

    def _write_failure(self, e: Exception) -> Exception:
        """An OS failure of the (asynchronous) writer as one sentence; others unchanged.
        TensorStore reports ``errno`` inside a ValueError's text."""
        found = re.search(r"os_error_code='?(\d+)", str(e))
        if not isinstance(e, OSError) and not found:
            return e
        quiet_async_noise()
        code = e.errno if isinstance(e, OSError) else int(found.group(1))
        kept = self.manager.latest_step()
        return UserError(
            f"Could not write a checkpoint in {self.directory}: {os.strerror(code)}; the newest "
            f"complete one ({'step ' + str(kept) if kept is not None else 'none yet'}) is kept. "
            "Free some space or fix the folder's permissions, then rerun to resume."
        )

    def close(self) -> None:
        remote.bounded(self.manager.close, self.directory, "closing the checkpoints")


def restore_raw_state(workdir: str, step: int | None = None) -> dict:
    """The saved state as nested dicts of arrays, without knowing its structure."""
    directory = checkpoint_dir(workdir)
    if not files.isdir(directory):
        raise UserError(f"No checkpoints in {workdir!r}; train first or check --workdir.")
    manager = ocp.CheckpointManager(directory)
    step = manager.latest_step() if step is None else step
    if step is None:
        raise UserError(f"No complete checkpoint in {directory!r}; train first or check --workdir.")
    # Onto this process's first device, whatever topology wrote it (e.g. 2 processes):
    # without a target Orbax insists on the writer's.
    meta = ocp.StandardCheckpointer().metadata(os.path.join(directory, str(step), "state"))
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(
        lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
        getattr(meta, "item_metadata", meta),
    )
    args = ocp.args.Composite(state=ocp.args.StandardRestore(target))
    restored = manager.restore(step, args=args)
    manager.close()
    return restored["state"]
