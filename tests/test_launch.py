"""The launch scripts: shellcheck-clean, and ``--dry-run`` prints what they would run."""

import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(
    os.path.join(ROOT, "launch", f)
    for f in os.listdir(os.path.join(ROOT, "launch"))
    if f.endswith(".sh")
)


def dry_run(script: str, *args: str, **env: str) -> list[str]:
    out = subprocess.run(
        ["bash", os.path.join(ROOT, "launch", script), "--dry-run", *args],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_launch_scripts_are_shellcheck_clean():
    assert len(SCRIPTS) >= 3
    out = subprocess.run(["shellcheck", *SCRIPTS], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout


def test_slurm_dry_run_gives_each_task_its_id_from_slurm():
    (line,) = dry_run("slurm_gpu.sh", "configs/dasr.py", "/shared/runs/x", "--config.seed=3")
    assert line.startswith("srun ")
    for part in ("SLURM_NTASKS", "SLURM_PROCID", ":12355", "--workdir=/shared/runs/x"):
        assert part in line
    assert line.rstrip().endswith("--config.distributed=True --config.seed=3")


def test_tpu_pod_dry_run_creates_the_slice_and_runs_on_every_worker():
    env = dict(TPU_NAME="pod", ZONE="us-central2-b", WORKDIR="gs://b/run", REPO="https://x/j.git")
    create, ssh = dry_run("tpu_pod.sh", "--config.seed=3", ACCELERATOR_TYPE="v4-32", **env)
    assert create.startswith("gcloud compute tpus tpu-vm create pod ")
    assert "--accelerator-type=v4-32" in create
    assert ssh.startswith("gcloud compute tpus tpu-vm ssh pod ") and "--worker=all" in ssh
    assert "--workdir=gs://b/run --config.distributed=True --config.seed=3" in ssh
    # Without ACCELERATOR_TYPE the slice exists already: only the run.
    assert len(dry_run("tpu_pod.sh", **env)) == 1


def test_tpu_pod_dry_run_with_gs_workdir_and_data_and_a_local_workdir_refused():
    env = dict(TPU_NAME="pod", ZONE="z", WORKDIR="gs://b/run", REPO="https://x/j.git")
    data = ["--config.data.train.kind=arrayrecord", "--config.data.train.hr_dir=gs://b/div2k"]
    (ssh,) = dry_run("tpu_pod.sh", *data, **env)
    assert "--workdir=gs://b/run --config.distributed=True" in ssh
    assert "--config.data.train.hr_dir=gs://b/div2k" in ssh
    out = subprocess.run(
        ["bash", os.path.join(ROOT, "launch", "tpu_pod.sh"), "--dry-run"],
        env={"PATH": os.environ["PATH"], **env, "WORKDIR": "/home/me/run"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "must be a gs:// path" in out.stderr
