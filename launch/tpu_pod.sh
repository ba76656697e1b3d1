#!/usr/bin/env bash
# Train a jaxsr recipe on a Cloud TPU VM pod slice (every host runs the same command).
#
#   TPU_NAME=my-v4-32 ZONE=us-central2-b WORKDIR=gs://my-bucket/dasr_x4 \
#   CONFIG=configs/dasr.py bash launch/tpu_pod.sh [--config.x=y ...]
#
# Each host reads its own slice of the dataset and feeds its local devices; the global
# batch (config.data.batch_size) must be divisible by the total number of TPU cores.
# jax.distributed.initialize() discovers the pod topology by itself on Cloud TPU.
# Preemption: TPU maintenance sends SIGTERM; jaxsr saves a checkpoint and exits, and
# rerunning this script resumes from it.
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}" "${WORKDIR:?set WORKDIR (a gs:// path)}"
CONFIG="${CONFIG:-configs/dasr.py}"
REPO="${REPO:-$(git config --get remote.origin.url || true)}"
EXTRA="$*"

gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" --worker=all --command="
  set -e
  if [ ! -d jaxsr ]; then git clone '$REPO' jaxsr; fi
  cd jaxsr && git pull --ff-only
  python3 -m venv ~/.jaxsr-venv && . ~/.jaxsr-venv/bin/activate
  pip install -q -e . 'jax[tpu]'
  python -m jaxsr.main --config='$CONFIG' --workdir='$WORKDIR' --config.distributed=True $EXTRA
"
