"""One registration per method: the lists the package keeps are derived from
``jaxsr.methods``, and a method from outside jaxsr — a temporary package with its own
model, task, recipe and converter and nothing else — trains, evaluates, upscales,
converts and benchmarks through the unchanged CLIs."""

import os
import shutil

import numpy as np
import pytest
from conftest import ROOT, run_jaxsr
from PIL import Image

import configs
from jaxsr import methods
from jaxsr.data import builtin_photo
from jaxsr.tasks.base import Task


def test_every_list_comes_from_the_registry():
    assert tuple(dict.fromkeys(methods.recipes().values())) == configs.RECIPES
    assert set(methods.model_names()) >= {"rrdbnet", "dasr", "mirnet", "sftgan", "spsagan"}
    for name in methods.model_names():
        if methods.method_of_model(name).tasks:  # a task that trains it
            assert methods.task_of_model(name).losses, name
        else:  # imported weights only (Real-ESRGAN so far): the base task's defaults
            assert methods.task_of_model(name) is Task, name
    assert "ESRGAN/BasicSR/Real-ESRGAN RRDBNet" in methods.supported_weights()
    with pytest.raises(Exception, match="Unknown model 'nope'; choose one of"):
        methods.model_class("nope")


def test_the_benchmark_suite_is_every_recipe_of_the_registry():
    """Issue 38, item 15: the suite's rows come from the registry (a method's own rows,
    else one per recipe), and ``--only`` with an unknown name is one sentence, not an
    empty table."""
    from jaxsr.bench import suite
    from jaxsr.errors import UserError

    recipes = {r.split(":")[0] for r in methods.recipes().values()}
    assert {row.recipe for row in suite.paper_rows()} == recipes
    with pytest.raises(UserError, match="--only=nope: no recipe nope in the suite; known: "):
        suite.rows("paper", "nope")


@pytest.fixture
def toy_package(tmp_path):
    """The toy method copied to a temporary folder, named by JAXSR_METHODS."""
    shutil.copytree(os.path.join(ROOT, "tests", "toy_method", "toy_sr"), tmp_path / "toy_sr")
    return str(tmp_path), {"PYTHONPATH": str(tmp_path), "JAXSR_METHODS": "toy_sr"}


@pytest.mark.slow
def test_a_toy_method_from_its_own_package_runs_through_every_cli(toy_package, tmp_path):
    torch = pytest.importorskip("torch")
    folder, env = toy_package
    recipe = os.path.join(folder, "toy_sr", "recipe.py")
    workdir = str(tmp_path / "w")

    run = run_jaxsr("jaxsr.main", f"--config={recipe}", f"--workdir={workdir}", **env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Final eval at step 4" in run.stdout

    out = str(tmp_path / "eval.json")
    run = run_jaxsr("jaxsr.evaluate", f"--model={workdir}", f"--out={out}", **env)
    assert run.returncode == 0 and "Wrote" in run.stdout, run.stderr[-3000:]

    Image.fromarray(builtin_photo("coffee")[:20, :24]).save(tmp_path / "x.png")
    args = (f"--model={workdir}", f"--input={tmp_path / 'x.png'}", f"--output={tmp_path / 'up'}")
    run = run_jaxsr("jaxsr.upscale", *args, "--tile=0", **env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert Image.open(tmp_path / "up" / "x_x4.png").size == (96, 80)

    run = run_jaxsr("jaxsr.benchmark", "--suite=paper", "--dry_run", "--only=recipe", **env)
    assert run.returncode == 0 and "toy_sr/recipe.py" in run.stdout, run.stderr[-3000:]

    torch.manual_seed(0)
    sd = {
        "conv1.weight": torch.randn(8, 3, 3, 3),
        "conv1.bias": torch.randn(8),
        "conv2.weight": torch.randn(48, 8, 3, 3),
        "conv2.bias": torch.randn(48),
    }
    torch.save(sd, tmp_path / "toy.pth")
    model = str(tmp_path / "m")
    run = run_jaxsr("jaxsr.convert", f"--src={tmp_path / 'toy.pth'}", f"--out={model}", **env)
    assert run.returncode == 0 and "ToyNet ×4" in run.stdout, run.stderr[-3000:]
    from jaxsr.model_dir import read_model_dir

    name, kwargs, variables = read_model_dir(model)
    assert (name, kwargs) == ("toy_net", {"scale": 4, "num_feat": 8})
    np.testing.assert_array_equal(
        variables["params"]["conv2"]["kernel"], sd["conv2.weight"].numpy().transpose(2, 3, 1, 0)
    )

    bench = ("--steps=1", "--infer_size=32", "--tile=16")
    run = run_jaxsr("jaxsr.benchmark", f"--config={recipe}", *bench, **env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "jaxsr (jit)" in run.stdout and "Tiled inference" in run.stdout
    # Issue 38, item 16: a method without a PyTorch reference was "PyTorch (? thr)".
    assert "? thr" not in run.stdout
    assert "PyTorch                    skipped: no PyTorch reference step" in run.stdout

    # Without the registration the same workdir names an unknown task, in one sentence.
    env.pop("JAXSR_METHODS")
    run = run_jaxsr("jaxsr.evaluate", f"--model={workdir}", **env)
    assert run.returncode == 2 and "Unknown task 'toy'; choose one of" in run.stderr
