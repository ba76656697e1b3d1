"""Kill a two-stage run at random moments (checkpoint saves included) and resume it;
start a second writer on a workdir in use. Slow: several full process starts."""

import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import subprocess_env

from jaxsr.train.checkpoint import Checkpointer, restore_raw_state

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# DASR tiny: stage 1 (encoder only) for 4 steps, then stage 2; a checkpoint after
# every step, so that a random kill often lands inside an asynchronous save.
STEPS = 16
ARGS = [
    "--config=configs/dasr.py:tiny",
    f"--config.num_train_steps={STEPS}",
    "--config.stages.encoder_steps=4",
    "--config.checkpoint_every=1",
    "--config.log_every=4",
]


def start(workdir: str) -> subprocess.Popen:
    env = subprocess_env(PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "jaxsr.main", *ARGS, f"--workdir={workdir}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_step(workdir: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    """Until the run has written a checkpoint beyond the one it started from (or ended)."""
    before = Checkpointer(workdir).latest_step() if os.path.isdir(workdir) else None
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        steps = [int(n) for n in _steps(workdir)]
        if steps and (before is None or max(steps) > before):
            return
        time.sleep(0.05)


def wait_for_save_in_progress(workdir: str, proc: subprocess.Popen, timeout=60) -> bool:
    folder = os.path.join(workdir, "checkpoints")
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if any(n.endswith(".orbax-checkpoint-tmp") for n in os.listdir(folder)):
            return True
        time.sleep(0.002)
    return False


def _steps(workdir: str) -> list[str]:
    folder = os.path.join(workdir, "checkpoints")
    return [n for n in os.listdir(folder) if n.isdigit()] if os.path.isdir(folder) else []


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out


@pytest.mark.slow
def test_random_sigkills_then_resume_end_bit_identical_and_a_second_writer_is_refused(tmp_path):
    # The uninterrupted run, with a second run started on its workdir while it trains.
    straight = str(tmp_path / "straight")
    first = start(straight)
    wait_for_step(straight, first)
    code, out = finish(start(straight))
    assert code == 2, out[-3000:]
    assert "is in use by another jaxsr run (pid" in out and "Traceback" not in out
    code, out = finish(first)
    assert code == 0, out[-3000:]

    workdir = str(tmp_path / "killed")
    rng = random.Random(0)
    kills = mid_save = 0
    for i in range(3):
        proc = start(workdir)
        wait_for_step(workdir, proc)
        if i % 2:  # at a random moment
            time.sleep(rng.uniform(0.0, 1.5))
        else:  # while Orbax is writing a checkpoint (its temporary folder exists)
            mid_save += wait_for_save_in_progress(workdir, proc)
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    assert kills >= 2 and mid_save >= 1, (kills, mid_save)
    code, out = finish(start(workdir))
    assert code == 0, out[-3000:]
    assert "Resumed from the checkpoint" in out

    a, b = (as_numpy(restore_raw_state(w)) for w in (straight, workdir))
    assert int(a["step"]) == int(b["step"]) == STEPS
    paths_a = jax.tree_util.tree_flatten_with_path(a)[0]
    paths_b = dict(jax.tree_util.tree_flatten_with_path(b)[0])
    assert len(paths_a) == len(paths_b) > 10
    for path, value in paths_a:
        np.testing.assert_array_equal(value, paths_b[path], err_msg=jax.tree_util.keystr(path))


def as_numpy(tree):
    """Arrays as numpy, typed PRNG keys as their raw key data."""

    def leaf(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(x)

    return jax.tree.map(leaf, tree)
