"""The persistent compilation cache: a second run of a recipe compiles nothing."""

import os
import re

import jax
import numpy as np
import pytest
from conftest import run_jaxsr

from jaxsr.train.checkpoint import restore_raw_state


def train(workdir: str, cache: str) -> str:
    out = run_jaxsr(
        "jaxsr.main",
        "--config=configs/esrgan_psnr.py:tiny",
        f"--workdir={workdir}",
        timeout=600,
        JAXSR_COMPILATION_CACHE=cache,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (line,) = re.findall(r"Compilation: .*", out.stderr)
    return line


@pytest.mark.slow
def test_second_run_loads_every_program_from_the_cache(tmp_path):
    cache = str(tmp_path / "cache")
    first = train(str(tmp_path / "a"), cache)
    assert re.search(r"0 programs loaded .*, [1-9]\d* compiled", first), first
    assert os.listdir(cache)
    # Another workdir, the same recipe: nothing is compiled ...
    second = train(str(tmp_path / "b"), cache)
    assert re.search(r"[1-9]\d* programs loaded .*, 0 compiled", second), second
    # ... and the loaded programs compute exactly what the compiled ones did.
    a, b = (restore_raw_state(str(tmp_path / w))["params"] for w in "ab")
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    from jaxsr.train import compile_cache

    monkeypatch.setenv("JAXSR_COMPILATION_CACHE", "off")
    assert compile_cache.default_dir() is None
    monkeypatch.setenv("JAXSR_COMPILATION_CACHE", str(tmp_path))
    assert compile_cache.default_dir() == str(tmp_path)
    monkeypatch.delenv("JAXSR_COMPILATION_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache.default_dir() == os.path.join(str(tmp_path), "jaxsr", "xla")
