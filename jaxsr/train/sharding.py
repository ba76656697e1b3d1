"""Data parallelism with one mesh axis, ``'data'``, over every device of every host.

The train state is replicated (``P()``) and the batch is split along its leading axis
(``P('data')``); ``jax.jit`` inserts the gradient all-reduce. BatchNorm inside the step
therefore sees the global batch. No pmap: the same code runs on one CPU, 8 GPUs, or a
TPU pod slice, where each host feeds only its local part of the batch.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from absl import logging
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


def local_copy(tree):
    """Each replicated array of ``tree`` as its copy on this process's first device.

    Evaluation runs on every process with these copies: a jitted function cannot mix
    global arrays with the host-local images it is fed, and one device per process is
    enough (and on fake CPU devices, far cheaper than a replicated computation)."""
    return jax.tree.map(lambda a: a.addressable_data(0) if isinstance(a, jax.Array) else a, tree)


# What ``launch/local_multiprocess.sh`` and SLURM/other clusters set; JAX itself reads
# only the first, and needs the other two passed in.
ENV_COORDINATOR, ENV_NUM_PROCESSES, ENV_PROCESS_ID = (
    "JAX_COORDINATOR_ADDRESS",
    "JAX_NUM_PROCESSES",
    "JAX_PROCESS_ID",
)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{name}={value!r} is not an integer; set a process count/id.") from None


def maybe_initialize_distributed(config) -> None:
    """``jax.distributed.initialize`` for multi-process runs (``config.distributed``).

    Cloud TPU pods and SLURM are detected by JAX itself. Elsewhere (several processes
    on one machine, a hand-made cluster) every process needs ``JAX_COORDINATOR_ADDRESS``
    (``host:port`` of process 0), ``JAX_NUM_PROCESSES`` and its own ``JAX_PROCESS_ID``,
    as ``launch/local_multiprocess.sh`` sets them. On CPUs the processes exchange
    gradients through gloo (TCP), so the same path runs on a laptop.
    """
    if not config.get("distributed", False) or jax.distributed.is_initialized():
        return
    coordinator = os.environ.get(ENV_COORDINATOR) or None
    num_processes, process_id = _env_int(ENV_NUM_PROCESSES), _env_int(ENV_PROCESS_ID)
    if coordinator and (num_processes is None or process_id is None):
        raise UserError(
            f"{ENV_COORDINATOR} is set but {ENV_NUM_PROCESSES} and {ENV_PROCESS_ID} are not; "
            "set all three on every process (launch/local_multiprocess.sh does)."
        )
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise UserError(
            f"{ENV_PROCESS_ID}={process_id} is outside 0..{num_processes - 1} "
            f"({ENV_NUM_PROCESSES}={num_processes})."
        )
    # Only the CPU client reads this; without it CPU processes cannot all-reduce.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=num_processes,
            process_id=process_id,
        )
    except (RuntimeError, ValueError) as e:
        where = coordinator or "the coordinator JAX detects (TPU pod or SLURM)"
        raise UserError(
            f"Could not join the multi-process run at {where}: {str(e).splitlines()[0][:200]}. "
            "Start every process with the same coordinator address and process count "
            "(launch/local_multiprocess.sh, launch/slurm_gpu.sh), or drop "
            "--config.distributed for one process."
        ) from e
    logging.info(
        "Process %d of %d; %d local of %d devices.",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )
