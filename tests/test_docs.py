"""The docs site is built the way that catches broken links and orphan pages
(issue 38, item 14: ``mkdocs build -q --strict`` passed them: ``-q`` hides the warnings
that ``--strict`` counts)."""

import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _docs_step(text: str) -> str:
    step = next(p.strip() for p in text.split("&&") if "mkdocs build" in p)
    return step


def test_readme_and_ci_build_the_docs_strictly_and_alike():
    readme = (ROOT / "README.md").read_text()
    command = next(ln for ln in readme.splitlines() if "pytest" in ln and "mkdocs" in ln)
    ci = (ROOT / ".ci" / "run").read_text()
    step = _docs_step(command)
    assert "--strict" in step and not re.search(r"\s-q\b", step), step
    assert step == _docs_step(ci)


def test_the_docs_step_fails_on_a_broken_link(tmp_path):
    pytest.importorskip("mkdocs")
    if shutil.which("mkdocs") is None:
        pytest.skip("mkdocs is not on PATH (pip install -e '.[docs]')")
    site = tmp_path / "site"
    shutil.copytree(ROOT / "docs", site / "docs")
    config = (ROOT / "mkdocs.yml").read_text()
    # Only the pages: the API pages' docstrings need the package, not this test.
    config = re.sub(r"\n  - API:\n(      - .*\n)+", "\n", config)
    config = re.sub(r"\nplugins:\n(  .*\n|      .*\n)+", "\nplugins:\n  - search\n", config)
    (site / "mkdocs.yml").write_text(config)
    shutil.rmtree(site / "docs" / "api", ignore_errors=True)
    step = _docs_step((ROOT / ".ci" / "run").read_text())
    ok = subprocess.run(step, shell=True, cwd=site, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    with (site / "docs" / "data.md").open("a") as f:
        f.write("\n[broken](no-such-page.md)\n")
    bad = subprocess.run(step, shell=True, cwd=site, capture_output=True, text=True)
    assert bad.returncode != 0 and "no-such-page.md" in bad.stdout + bad.stderr
