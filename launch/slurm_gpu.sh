#!/usr/bin/env bash
# Multi-node, multi-GPU training under SLURM: one process per node, all local GPUs each.
#
#   sbatch --nodes=2 --gpus-per-node=8 launch/slurm_gpu.sh configs/dasr.py /shared/runs/dasr_x4
#
# jax.distributed.initialize() reads the SLURM environment (coordinator = first node).
# Outside SLURM set JAX_COORDINATOR_ADDRESS=host:port, JAX_NUM_PROCESSES and
# JAX_PROCESS_ID on every process instead. The workdir must be on a filesystem all
# nodes share (NFS, Lustre, or a gs:// / s3:// path Orbax can write).
#SBATCH --ntasks-per-node=1
#SBATCH --job-name=jaxsr
set -euo pipefail
CONFIG="${1:?config file}"
WORKDIR="${2:?workdir}"
shift 2
# Install once beforehand: pip install -e . 'jax[cuda12]'
srun python -m jaxsr.main --config="$CONFIG" --workdir="$WORKDIR" --config.distributed=True "$@"
