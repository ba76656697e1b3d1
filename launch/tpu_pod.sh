#!/usr/bin/env bash
# Train a jaxsr recipe on a Cloud TPU VM pod slice: every host runs the same command.
#
#   TPU_NAME=my-v4-32 ZONE=us-central2-b WORKDIR=gs://my-bucket/dasr_x4 \
#   CONFIG=configs/dasr.py bash launch/tpu_pod.sh [--dry-run] [--config.x=y ...]
#
# Set ACCELERATOR_TYPE (e.g. v4-32) to create the slice first (RUNTIME_VERSION picks the
# TPU software, default tpu-ubuntu2204-base). Each host reads its share of every global
# batch and feeds its local chips; the global batch (config.data.batch_size) must be
# divisible by the number of TPU chips. jax.distributed.initialize() discovers the pod by
# itself. Preemption or maintenance sends SIGTERM: jaxsr saves a checkpoint and exits,
# and rerunning this script resumes from it. --dry-run prints every command instead.
set -euo pipefail

DRY_RUN=0
if [[ "${1:-}" == "--dry-run" ]]; then
  DRY_RUN=1
  shift
fi
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}" "${WORKDIR:?set WORKDIR (a gs:// path)}"
if [[ "$WORKDIR" != gs://* ]]; then
  # Every host must see the same checkpoints, config and lock: a bucket, not a local disk.
  echo "error: WORKDIR=$WORKDIR must be a gs:// path that every TPU host can reach" >&2
  exit 2
fi
CONFIG="${CONFIG:-configs/dasr.py}"
REPO="${REPO:-$(git config --get remote.origin.url || true)}"
: "${REPO:?set REPO (the git URL the TPU hosts clone jaxsr from)}"
RUNTIME_VERSION="${RUNTIME_VERSION:-tpu-ubuntu2204-base}"
EXTRA=""
if (($#)); then
  EXTRA="$(printf ' %q' "$@")"
fi

run() {
  if ((DRY_RUN)); then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

if [[ -n "${ACCELERATOR_TYPE:-}" ]]; then
  run gcloud compute tpus tpu-vm create "$TPU_NAME" --zone="$ZONE" \
    --accelerator-type="$ACCELERATOR_TYPE" --version="$RUNTIME_VERSION"
fi

# The same script on every host: fetch the code, install, train.
REMOTE="set -e
if [ ! -d jaxsr ]; then git clone $(printf '%q' "$REPO") jaxsr; fi
cd jaxsr && git pull --ff-only
python3 -m venv ~/.jaxsr-venv && . ~/.jaxsr-venv/bin/activate
pip install -q -e . 'jax[tpu]'
python -m jaxsr.main --config=$(printf '%q' "$CONFIG") --workdir=$(printf '%q' "$WORKDIR") --config.distributed=True$EXTRA"

run gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command="$REMOTE"
