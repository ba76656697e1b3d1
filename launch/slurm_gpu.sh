#!/usr/bin/env bash
# Multi-node GPU training under SLURM: one jaxsr process per GPU.
#
#   sbatch --nodes=2 --ntasks-per-node=8 --gpus-per-task=1 \
#     launch/slurm_gpu.sh configs/dasr.py /shared/runs/dasr_x4 [--config.x=y ...]
#   bash launch/slurm_gpu.sh --dry-run configs/dasr.py /shared/runs/dasr_x4
#
# Every task gets the coordinator (port JAXSR_PORT, default 12355, on the job's first
# node), the process count and its own id from SLURM's environment (SLURM_NTASKS,
# SLURM_PROCID); SLURM gives each task its GPU (--gpus-per-task=1). The workdir must
# be on a filesystem all nodes share (NFS, Lustre) or a gs:// path Orbax can write.
# Install once beforehand, on a shared path: pip install -e . 'jax[cuda12]'
# Preemption: scancel/requeue sends SIGTERM; every process saves a checkpoint and
# exits, and resubmitting the same command resumes from it.
#SBATCH --job-name=jaxsr
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-task=1
#SBATCH --signal=TERM@120
set -euo pipefail

DRY_RUN=0
if [[ "${1:-}" == "--dry-run" ]]; then
  DRY_RUN=1
  shift
fi
CONFIG="${1:?usage: slurm_gpu.sh [--dry-run] CONFIG WORKDIR [jaxsr.main flags]}"
WORKDIR="${2:?usage: slurm_gpu.sh [--dry-run] CONFIG WORKDIR [jaxsr.main flags]}"
shift 2
PORT="${JAXSR_PORT:-12355}"
PYTHON="${PYTHON:-python}"
if [[ -n "${SLURM_JOB_NODELIST:-}" ]]; then
  HEAD_NODE="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
else
  HEAD_NODE="FIRST_NODE_OF_THE_JOB" # outside a job (--dry-run): filled in by SLURM
fi

run() {
  if ((DRY_RUN)); then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# The per-task variables are expanded by each task's own shell, hence single quotes.
# shellcheck disable=SC2016
run srun --kill-on-bad-exit=1 --export=ALL bash -c \
  'JAX_COORDINATOR_ADDRESS="$0" JAX_NUM_PROCESSES="$SLURM_NTASKS" JAX_PROCESS_ID="$SLURM_PROCID" exec "$@"' \
  "$HEAD_NODE:$PORT" "$PYTHON" -m jaxsr.main --config="$CONFIG" --workdir="$WORKDIR" \
  --config.distributed=True "$@"
