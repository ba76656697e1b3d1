#!/usr/bin/env bash
# N jaxsr processes on this machine, joined by JAX's distributed runtime: the
# multi-host code path (per-process data, global batch assembly, collective
# all-reduce, multi-process Orbax checkpoints) without a cluster.
#
#   launch/local_multiprocess.sh 2 --config=configs/esrgan_psnr.py:tiny --workdir=runs/mp
#   launch/local_multiprocess.sh --dry-run 4 --config=... --workdir=...
#
# Process 0 prints to this terminal; process i > 0 writes LOGDIR/process_i.log, where
# LOGDIR is $JAXSR_LOG_DIR, else the workdir if it is local, else a new local folder
# (named on stderr) for a gs:// workdir.
# On CPUs each process gets one device and the gradients travel over gloo (TCP). On a
# multi-GPU host set CUDA_VISIBLE_DEVICES per process yourself, or simply run one
# process that sees every GPU. SIGINT/SIGTERM are passed on to every process, which
# all save a checkpoint and exit; rerunning the same command resumes.
# JAXSR_PORT picks the coordinator's port (default: a free one).
set -euo pipefail

DRY_RUN=0
if [[ "${1:-}" == "--dry-run" ]]; then
  DRY_RUN=1
  shift
fi
N="${1:-}"
if ! [[ "$N" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [--dry-run] NUM_PROCESSES --config=... --workdir=... [jaxsr.main flags]" >&2
  exit 2
fi
shift
WORKDIR=""
for arg in "$@"; do
  case "$arg" in
    --workdir=*) WORKDIR="${arg#--workdir=}" ;;
  esac
done
if [[ -z "$WORKDIR" ]]; then
  echo "error: pass --workdir=DIR (a folder or gs://bucket/path)" >&2
  exit 2
fi
PYTHON="${PYTHON:-python}"
PORT="${JAXSR_PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("localhost", 0)); print(s.getsockname()[1])')}"

command_of() {  # the command line of process $1, as it is run
  printf 'JAX_COORDINATOR_ADDRESS=localhost:%s JAX_NUM_PROCESSES=%s JAX_PROCESS_ID=%s %s -m jaxsr.main' \
    "$PORT" "$N" "$1" "$PYTHON"
  printf ' %q' "$@" --config.distributed=True
  printf '\n'
}

if ((DRY_RUN)); then
  for ((i = 0; i < N; i++)); do
    command_of "$i" "$@"
  done
  exit 0
fi

if [[ -n "${JAXSR_LOG_DIR:-}" ]]; then
  LOGDIR="$JAXSR_LOG_DIR"
elif [[ "$WORKDIR" == *://* ]]; then # an object store: the logs stay on this machine
  LOGDIR="$(mktemp -d -t jaxsr-logs.XXXXXX)"
  echo "process logs: $LOGDIR" >&2
else
  LOGDIR="$WORKDIR"
fi
mkdir -p "$LOGDIR"
pids=()
signalled=0
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
}
trap 'signalled=1; stop_all' INT TERM

for ((i = N - 1; i >= 0; i--)); do
  if ((i == 0)); then
    JAX_COORDINATOR_ADDRESS="localhost:$PORT" JAX_NUM_PROCESSES="$N" JAX_PROCESS_ID=0 \
      "$PYTHON" -m jaxsr.main "$@" --config.distributed=True &
  else
    JAX_COORDINATOR_ADDRESS="localhost:$PORT" JAX_NUM_PROCESSES="$N" JAX_PROCESS_ID="$i" \
      "$PYTHON" -m jaxsr.main "$@" --config.distributed=True >"$LOGDIR/process_$i.log" 2>&1 &
  fi
  pids+=("$!")
done

# The first process to fail stops the others (they would wait for it until a timeout).
status=0
while true; do
  set +e
  wait -n
  rc=$?
  set -e
  if ((rc == 127)); then break; fi # no process left
  # A signal to this script interrupts the wait (130/143); the processes' own statuses
  # (75 after saving, if SIGTERM reached them) follow.
  if ((signalled && (rc == 130 || rc == 143))); then continue; fi
  if ((rc != 0 && status == 0)); then
    status=$rc
    stop_all
  fi
done
if ((status == 75)); then
  echo "stopped after saving a checkpoint; rerun the same command to resume" >&2
elif ((status != 0)); then
  echo "error: a process exited with status $status; see $LOGDIR/process_*.log" >&2
fi
exit "$status"
