"""Multi-process training on one machine: 2 CPU processes joined by JAX's distributed
runtime (gloo all-reduce), started by ``launch/local_multiprocess.sh``.

One run of 2 processes, its workdir on the object store (``gs://`` on the tests'
fake-gcs-server, as on a pod), is compared with the shared 1-process local run of the
same config (``trained_workdir``: the ``tiny`` preset, 4 steps, global batch 8), then
its step-2 checkpoint is resumed with 2 processes (bit-identical) and with 1 process.
"""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import subprocess_env, tiny_config

import jaxsr
from jaxsr import files
from jaxsr.files import remote
from jaxsr.train.checkpoint import Checkpointer, restore_raw_state
from jaxsr.train.loop import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(ROOT, "launch", "local_multiprocess.sh")
ARGS = ["--config=configs/esrgan_psnr.py:tiny"]


def launch(n: int, workdir: str, *args: str, dry_run: bool = False, **env):
    # One CPU device per process (not the suite's 8 fake ones).
    env = subprocess_env(PYTHON=sys.executable, **env)
    cmd = ["bash", LAUNCH, *(["--dry-run"] if dry_run else []), str(n), *ARGS]
    return subprocess.run(
        [*cmd, f"--workdir={workdir}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def params_at(workdir: str, step: int):
    return restore_raw_state(workdir, step)["params"]


def assert_trees(a, b, *, exact: bool, atol: float = 0.0):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if exact:
            np.testing.assert_array_equal(x, y)
        else:
            np.testing.assert_allclose(x, y, atol=atol, rtol=0)


def test_dry_run_prints_each_process_command(tmp_path):
    out = launch(3, str(tmp_path), dry_run=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines):
        assert f"JAX_NUM_PROCESSES=3 JAX_PROCESS_ID={i} " in line
        assert "--config.distributed=True" in line and "--workdir=" in line
    assert not os.path.exists(tmp_path / "checkpoints")


@pytest.mark.slow
def test_two_processes_train_resume_and_hand_over_to_one(bucket, tmp_path, trained_workdir, caplog):
    one_dir, _ = trained_workdir
    two = f"{bucket}/two"
    logs = str(tmp_path / "logs")
    run = launch(2, two, JAXSR_LOG_DIR=logs)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "Process 0 of 2" in run.stderr and "Final eval at step 4" in run.stdout
    # Only process 0 writes metrics; process 1 logs to the (local) log folder.
    events = [f for f in files.listdir(two) if f.startswith("events.")]
    assert len(events) == 1 and os.path.isfile(os.path.join(logs, "process_1.log"))
    assert not os.path.exists(os.path.join(ROOT, "gs:"))
    # It loads like any workdir ...
    module, variables = jaxsr.load_model(two)
    assert module.apply(variables, np.zeros((1, 8, 8, 3), np.float32)).shape == (1, 32, 32, 3)
    # ... and, fed the same global batches, holds the parameters one process computes
    # (sums in another order).
    assert_trees(params_at(two, 4), params_at(one_dir, 4), exact=False, atol=1e-5)
    data = files.listdir(f"{two}/checkpoints/2/data")
    assert sorted(f for f in data if f.endswith(".json")) == [
        "process_0-of-2.json",
        "process_1-of-2.json",
    ]

    def from_step_2(name: str) -> str:
        workdir = f"{bucket}/{name}"
        for rel in files.walk_files(two):
            if not rel.startswith("checkpoints/4/"):
                remote.copy(f"{two}/{rel}", f"{workdir}/{rel}")
        return workdir

    # 2 -> 2: resuming the step-2 checkpoint repeats the uninterrupted run bit for bit.
    again = from_step_2("again")
    run = launch(2, again, JAXSR_LOG_DIR=logs)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Resumed from the checkpoint at step 2" in run.stderr
    assert_trees(params_at(again, 4), params_at(two, 4), exact=True)

    # 2 -> 1: the data stream does not depend on the process count, so one process
    # continues it (on this suite's 8 devices) and lands on the same parameters.
    single = from_step_2("single")
    train_and_evaluate(tiny_config(), single)
    assert "written by 2 processes; this run has 1" in caplog.text
    assert Checkpointer(single).latest_step() == 4
    assert_trees(params_at(single, 4), params_at(two, 4), exact=False, atol=1e-5)
