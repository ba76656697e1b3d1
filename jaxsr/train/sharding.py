"""Data parallelism with one mesh axis, ``'data'``, over every device of every host.

The train state is replicated (``P()``) and the batch is split along its leading axis
(``P('data')``); ``jax.jit`` inserts the gradient all-reduce. BatchNorm inside the step
therefore sees the global batch. No pmap: the same code runs on one CPU, 8 GPUs, or a
TPU pod slice, where each host feeds only its local part of the batch.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxsr.errors import UserError


def make_mesh(devices=None) -> Mesh:
    """A 1-D ``'data'`` mesh over ``devices`` (default: all devices of all processes)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec("data"))


def check_batch_size(global_batch: int, mesh: Mesh) -> None:
    """Fail clearly when the batch cannot be split evenly over the devices."""
    n = mesh.devices.size
    if global_batch % n:
        lower = (global_batch // n) * n or n
        raise UserError(
            f"The global batch size {global_batch} is not divisible by the {n} devices; "
            f"set --config.data.batch_size to a multiple of {n} (e.g. {lower} or {lower + n})."
        )


def put_batch(local_batch: dict, mesh: Mesh) -> dict:
    """Assemble each process's numpy batch into one global array sharded on ``'data'``."""
    sharding = batch_sharded(mesh)
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
        for k, v in local_batch.items()
    }


def put_replicated(tree, mesh: Mesh):
    return jax.device_put(tree, replicated(mesh))


def maybe_initialize_distributed(config) -> None:
    """``jax.distributed.initialize()`` for multi-host runs (TPU pods, multi-node GPU).

    On Cloud TPU the coordinator is discovered automatically; on GPU clusters set
    ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` (see
    ``launch/``). Single-host runs leave ``config.distributed`` off.
    """
    if config.get("distributed", False) and not jax.distributed.is_initialized():
        jax.distributed.initialize()
