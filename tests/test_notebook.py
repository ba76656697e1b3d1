"""``launch/colab.ipynb`` runs top to bottom headless on a CPU."""

import os

import pytest
from conftest import SUBPROCESS_XLA_FLAGS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "launch", "colab.ipynb")


@pytest.mark.slow
def test_colab_notebook_executes_headless(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    # One CPU device, no suite-wide settings. The notebook runs in the repository root,
    # as in a fresh clone, with its training workdir moved out of the repository.
    monkeypatch.setenv("XLA_FLAGS", SUBPROCESS_XLA_FLAGS)
    monkeypatch.setenv("JAXSR_COMPILATION_CACHE", "off")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    workdir = str(tmp_path / "colab_dasr")
    # The training cell's run, shortened (the cell is otherwise run as written).
    edits = {
        '"workdirs/colab_dasr"': repr(workdir),
        "config.num_train_steps = 240": "config.num_train_steps = 24",
        "config.stages.encoder_steps = 80": "config.stages.encoder_steps = 8",
        "config.optim.encoder.milestones = (60,)": "config.optim.encoder.milestones = (6,)",
        "warmup_steps, config.optim.sr.decay_steps = 10, 150": "warmup_steps, "
        "config.optim.sr.decay_steps = 2, 15",
        "config.log_every, config.checkpoint_every = 40, 240": "config.log_every, "
        "config.checkpoint_every = 8, 24",
    }
    for old, new in edits.items():
        assert any(old in c.source for c in nb.cells), f"the notebook no longer has {old!r}"
        for cell in nb.cells:
            cell.source = cell.source.replace(old, new)
    client = nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": ROOT}}
    )
    client.execute()
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    # The training's Table 2 rows, the upscaling's PSNRs and evaluate's table.
    for needle in ("σ=1.2", "σ=3.6", "DASR     PSNR", "bicubic  PSNR"):
        assert needle in text, text[-3000:]
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the comparison grid was not shown"
