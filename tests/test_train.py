"""The training loop: sharding, learning, resume, preemption and failure modes."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import recipe_config, subprocess_env, tiny_config

from jaxsr.errors import UserError
from jaxsr.tasks import make_task
from jaxsr.train import sharding
from jaxsr.train.checkpoint import Checkpointer, restore_raw_state
from jaxsr.train.loop import compile_train_step, init_state, train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fixed_batch(n=8, size=32, seed=0):
    rng = np.random.default_rng(seed)
    # Smooth random images (upsampled noise) so there is signal to learn.
    small = rng.integers(0, 256, (n, size // 4, size // 4, 3)).astype(np.float32)
    gt = np.asarray(jax.image.resize(small, (n, size, size, 3), "bilinear"))
    return {"gt": np.clip(gt, 0, 255).astype(np.uint8)}


def params_close(a, b, atol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=0)


def test_batch_not_divisible_by_devices_is_clear(tmp_path, n_devices):
    config = tiny_config(**{"data.batch_size": 6})
    with pytest.raises(UserError, match="not divisible by the 8 devices"):
        train_and_evaluate(config, str(tmp_path))


def test_scan_blocks_reaches_the_model_and_is_refused_where_unsupported():
    # (That the scanned trunk computes what the unrolled one does: tests/test_rrdbnet.py.)
    assert make_task(tiny_config(scan_blocks=True)).model.scan_blocks
    with pytest.raises(UserError, match="scan_blocks is not available for the model 'mirnet'"):
        make_task(recipe_config("mirnet", scan_blocks=True))


@pytest.mark.slow
def test_sharded_step_equals_single_device_step(n_devices):
    config = tiny_config()
    task = make_task(config)
    batch = fixed_batch()
    results = []
    for devices in (jax.devices()[:1], jax.devices()):
        mesh = sharding.make_mesh(devices)
        state = init_state(task, config, mesh)
        step = compile_train_step(task, mesh)
        state, metrics = step(state, sharding.put_batch(batch, mesh), {})
        state, metrics = step(state, sharding.put_batch(fixed_batch(seed=1), mesh), {})
        assert len(state.params["g"]["conv_first"]["kernel"].sharding.device_set) == len(devices)
        results.append((jax.device_get(state.params), jax.device_get(metrics)))
    (p1, m1), (p8, m8) = results
    params_close(p1, p8, atol=1e-5)
    assert m1["loss"] == pytest.approx(m8["loss"], abs=1e-6)


@pytest.mark.slow
def test_loss_decreases_on_a_fixed_batch():
    config = tiny_config(**{"optim.lr": 2e-3})
    task = make_task(config)
    mesh = sharding.make_mesh(jax.devices()[:1])
    state = init_state(task, config, mesh)
    step = compile_train_step(task, mesh)
    batch = sharding.put_batch(fixed_batch(), mesh)
    losses = []
    for _ in range(40):
        state, metrics = step(state, batch, {})
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.slow
def test_resume_gives_the_same_params_as_an_uninterrupted_run(tmp_path):
    overrides = {"num_train_steps": 6, "checkpoint_every": 2, "ema_decay": 0.9}
    straight = train_and_evaluate(tiny_config(**overrides), str(tmp_path / "a"))
    # "Kill" after step 4 (the run ends there with a checkpoint), then rerun the same command.
    train_and_evaluate(tiny_config(**{**overrides, "num_train_steps": 4}), str(tmp_path / "b"))
    assert Checkpointer(str(tmp_path / "b")).latest_step() == 4
    # The longer schedule is a config change that must be asked for.
    with pytest.raises(UserError, match="num_train_steps: 4 -> 6"):
        train_and_evaluate(tiny_config(**overrides), str(tmp_path / "b"))
    resumed = train_and_evaluate(
        tiny_config(**overrides), str(tmp_path / "b"), allow_config_change=True
    )
    assert int(resumed.step) == int(straight.step) == 6
    params_close(straight.params, resumed.params, atol=0)
    params_close(straight.ema, resumed.ema, atol=0)
    params_close(straight.opt_state, resumed.opt_state, atol=0)


@pytest.mark.slow
def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(tmp_path):
    # lr jumps to 1e27 after step 2: step 3 blows the weights up, step 4's loss is inf/NaN.
    config = tiny_config(
        **{
            "num_train_steps": 10,
            "checkpoint_every": 2,
            "log_every": 2,
            "optim.schedule": "multistep",
            "optim.milestones": (2,),
            "optim.gamma": 1e30,
            "optim.lr": 1e-3,
        }
    )
    with pytest.raises(UserError, match=r"NaN/inf at step 4 .*last good checkpoint \(step 2\)"):
        train_and_evaluate(config, str(tmp_path))
    assert Checkpointer(str(tmp_path)).latest_step() == 2
    raw = restore_raw_state(str(tmp_path))
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(raw["params"]))


def _run_main(args, **kw):
    env = subprocess_env()
    return subprocess.Popen(
        [sys.executable, "-m", "jaxsr.main", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_the_rerun_resumes(tmp_path):
    workdir = str(tmp_path / "w")
    args = [
        "--config=configs/esrgan_psnr.py:tiny",
        f"--workdir={workdir}",
        "--config.num_train_steps=100000",
        "--config.checkpoint_every=100000",
        "--config.log_every=50",
    ]
    proc = _run_main(args)
    deadline = time.time() + 240
    lines = []
    for line in proc.stdout:  # wait until training is under way (its first log line)
        lines.append(line)
        if re.search(r"step \d+/100000 · loss", line):
            break
        assert time.time() < deadline, "".join(lines)[-3000:]
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    log = "".join(lines) + out
    assert proc.returncode == 75, log[-3000:]  # EXIT_PREEMPTED: stopped early, resumable
    assert "Stopped by SIGTERM" in log
    step = Checkpointer(workdir).latest_step()
    assert step is not None and step >= 50
    # The rerun picks the run up at that step.
    proc = _run_main([*args, f"--config.num_train_steps={step + 2}", "--allow_config_change"])
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    assert f"Resumed from the checkpoint at step {step}" in out
    assert Checkpointer(workdir).latest_step() == step + 2


@pytest.mark.slow
def test_unknown_config_key_and_bad_values_are_one_line_errors(tmp_path):
    for arg, expect in [
        ("--config.data.bach_size=3", "unknown config field 'bach_size'"),
        ("--config.data.batch_size=abc", "batch_size=abc"),
    ]:
        proc = _run_main(["--config=configs/esrgan_psnr.py:tiny", f"--workdir={tmp_path}", arg])
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 2, out
        assert expect in out and "Traceback" not in out


@pytest.mark.slow
def test_bf16_and_remat_options_train():
    config = tiny_config(**{"dtype": "bfloat16", "remat": True})
    task = make_task(config)
    mesh = sharding.make_mesh()
    state = init_state(task, config, mesh)
    state, metrics = compile_train_step(task, mesh)(
        state, sharding.put_batch(fixed_batch(), mesh), {}
    )
    assert np.isfinite(float(metrics["loss"]))
    assert state.params["g"]["conv_first"]["kernel"].dtype == jnp.float32


@pytest.mark.slow
def test_resuming_on_another_device_count_says_it_is_not_bit_identical(tmp_path):
    """Issue 38, item 16: a resume on another number of devices continued silently,
    though not bit for bit (as a change of process count is reported)."""
    from conftest import run_jaxsr

    workdir = str(tmp_path / "w")
    train_and_evaluate(tiny_config(num_train_steps=2, checkpoint_every=1), workdir)
    assert json.loads((tmp_path / "w" / "devices.json").read_text()) == {"devices": 8}
    run = run_jaxsr(  # one CPU device in the child process
        "jaxsr.main",
        "--config=configs/esrgan_psnr.py:tiny",
        "--config.num_train_steps=3",
        "--config.checkpoint_every=1",
        "--allow_config_change",
        f"--workdir={workdir}",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    log = run.stdout + run.stderr
    assert "This run has 1 devices; the checkpoint was written by a run with 8" in log
    assert json.loads((tmp_path / "w" / "devices.json").read_text()) == {"devices": 1}
