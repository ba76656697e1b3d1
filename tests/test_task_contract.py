"""Every task honours the contract of ``jaxsr.tasks.base``: init -> one step of each
phase -> evaluation -> export -> load_model -> predict, with nothing task-specific
in between (the same path the loop, the CLIs and the benchmark take)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import recipe_config

from jaxsr import methods
from jaxsr.saved_model import load_model, save_model
from jaxsr.tasks import Task, make_task
from jaxsr.train import sharding
from jaxsr.train.loop import compile_train_step, init_state

# Every task of every registered method, with the recipe that trains it (jaxsr.methods).
RECIPES = methods.recipes()


def test_every_registered_task_has_a_recipe_and_declares_its_losses():
    assert set(RECIPES) == set(methods.task_names())
    classes = [methods.task_class(n) for n in methods.task_names()]
    assert all(issubclass(cls, Task) and cls.losses for cls in classes)


@pytest.mark.slow
@pytest.mark.parametrize("task_name", sorted(RECIPES))
def test_task_contract(task_name, tmp_path):
    config = recipe_config(RECIPES[task_name], "tiny")
    assert config.task == task_name
    task = make_task(config)
    mesh = sharding.make_mesh()
    consts = sharding.put_replicated(task.constants(), mesh)
    state = init_state(task, config, mesh)

    # The example batch has the shape and dtype of the real training data.
    real = next(iter(task.train_data(0, 1)))
    example = task.example_batch(config.data.batch_size)
    assert {k: (v.shape, v.dtype) for k, v in real.items()} == {
        k: (v.shape, v.dtype) for k, v in example.items()
    }

    # One step of each phase; the loop reads 'lr' and 'nonfinite'.
    phases = task.phases()
    assert phases[0][0] == 0 and [f for f, _ in phases] == sorted(f for f, _ in phases)
    batch = sharding.put_batch(example, mesh)
    for i, (_, step_fn) in enumerate(phases):
        state, metrics = compile_train_step(task, mesh, step_fn)(state, batch, consts)
        assert int(state.step) == i + 1
        assert {"loss", "lr", "nonfinite"} <= set(metrics)
        assert np.isfinite(float(metrics["loss"])) and float(metrics["nonfinite"]) == 0.0

    # Evaluation: the evaluator names its metrics after the channel it scores.
    evaluator = task.evaluator(consts)
    predict = jax.jit(task.predict)
    variables = task.eval_variables(state)
    results = evaluator.run(lambda x: predict(variables, jax.tree.map(jnp.asarray, x)))
    scalars = evaluator.scalars(results)
    assert scalars and all(np.isfinite(v) for v in scalars.values())
    if task.image_to_image:
        channel = "rgb" if config.get("eval_rgb", False) else "y"
        assert f"eval/psnr_{channel}" in scalars or any(
            k.startswith(f"eval/psnr_{channel}/") for k in scalars
        )
    report = evaluator.report(results, 7)
    assert "Final eval at step 7" in report
    if config.get("eval_niqe"):  # the closing table shows what the run scored
        assert f"niqe_{config.eval_niqe}" in report, report

    # Export -> load_model -> predict gives what the task predicts.
    name, kwargs = task.model_spec(task.config)
    save_model(str(tmp_path / "m"), name, kwargs, task.model_variables(state))
    module, loaded = load_model(str(tmp_path / "m"))
    for a, b in zip(
        jax.tree.leaves(loaded), jax.tree.leaves(task.model_variables(state)), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    if not task.image_to_image:  # its own test checks apply (pix2pixHD, SFTGAN, SPSAGAN)
        return
    lq = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (1, 16, 16, 3)), jnp.float32)
    np.testing.assert_allclose(
        np.asarray(module.apply(loaded, lq)), np.asarray(predict(variables, lq)), atol=1e-5
    )


def test_mirnet_metrics_are_labelled_rgb():
    config = recipe_config("mirnet", "tiny")
    evaluator = make_task(config).evaluator({})
    identity = evaluator.run(lambda lq: lq)
    keys = set(evaluator.scalars(identity))
    assert any(k.startswith("eval/psnr_rgb") for k in keys)
    assert not any("psnr_y" in k for k in keys)
    assert any(k.startswith("eval/psnr_rgb_input") for k in keys)  # the baseline column
