"""Orbax checkpoints of the train state together with the data iterator's position.

Layout: ``WORKDIR/checkpoints/<step>/{state,data}``. Orbax writes each step into a
temporary directory and renames it when complete, so a killed run never leaves a
half-written checkpoint; the newest complete one is restored on restart, including
the grain iterator state, so a resumed run sees exactly the batches the uninterrupted
run would have seen.
"""

from __future__ import annotations

import os

import grain
import jax
import orbax.checkpoint as ocp

from jaxsr.errors import UserError


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(os.path.abspath(workdir), "checkpoints")


class Checkpointer:
    """Thin wrapper over ``ocp.CheckpointManager`` (keep the newest ``keep`` steps)."""

    def __init__(self, workdir: str, keep: int = 3):
        self.manager = ocp.CheckpointManager(
            checkpoint_dir(workdir),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, data_iterator=None) -> None:
        args = {"state": ocp.args.StandardSave(state)}
        if data_iterator is not None:
            args["data"] = grain.checkpoint.CheckpointSave(data_iterator)
        self.manager.save(step, args=ocp.args.Composite(**args), force=True)

    def restore(self, state_template, data_iterator=None, step: int | None = None):
        """Restore into the shapes/shardings of ``state_template``; returns the state."""
        step = self.latest_step() if step is None else step
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_template)
        args = {"state": ocp.args.StandardRestore(abstract)}
        if data_iterator is not None:
            args["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        try:
            restored = self.manager.restore(step, args=ocp.args.Composite(**args))
        except (ValueError, KeyError) as e:
            raise UserError(
                f"The checkpoint at step {step} in {self.manager.directory} does not match this "
                f"config (different model or optimizer?); use a new --workdir. ({str(e)[:300]})"
            ) from e
        return restored["state"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.close()


def restore_raw_state(workdir: str, step: int | None = None) -> dict:
    """The saved state as nested dicts of arrays, without knowing its structure."""
    directory = checkpoint_dir(workdir)
    if not os.path.isdir(directory):
        raise UserError(f"No checkpoints in {workdir!r}; train first or check --workdir.")
    manager = ocp.CheckpointManager(directory)
    step = manager.latest_step() if step is None else step
    if step is None:
        raise UserError(f"No complete checkpoint in {directory!r}; train first or check --workdir.")
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    manager.close()
    return restored["state"]
