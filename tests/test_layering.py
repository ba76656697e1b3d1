"""The house rules of the package's layering, read from its source (DESIGN.md): no
import cycle (imports inside functions count), no library module importing a CLI
module, no probing of the task in the loop, and no torch needed by ``import jaxsr``."""

import ast
import pathlib
import subprocess
import sys

import pytest
from conftest import subprocess_env

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jaxsr"
CLI_MODULES = {"jaxsr.main", "jaxsr.evaluate", "jaxsr.upscale", "jaxsr.interpolate"}
CLI_MODULES |= {"jaxsr.benchmark", "jaxsr.convert.__main__", "jaxsr.export"}


def modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
    """Every jaxsr module ``name`` imports, at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@pytest.fixture(scope="module")
def graph():
    mods = modules()
    return {name: imports(name, path, set(mods)) for name, path in mods.items()}


def test_the_walker_sees_function_level_imports_and_finds_cycles():
    src = "def f():\n    from jaxsr.b import x\n"
    tree_path = pathlib.Path(__file__).parent / "_layering_probe.py"
    tree_path.write_text(src)
    try:
        assert imports("jaxsr.a", tree_path, {"jaxsr.a", "jaxsr.b"}) == {"jaxsr.b"}
    finally:
        tree_path.unlink()
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_cycle(graph):
    assert cycles(graph) == []


def test_no_library_module_imports_a_cli(graph):
    assert set(graph) >= CLI_MODULES
    bad = {
        (m, t) for m, ts in graph.items() if m not in CLI_MODULES for t in ts if t in CLI_MODULES
    }
    assert bad == set()


def test_the_loop_does_not_probe_the_task():
    tree = ast.parse((PACKAGE / "train" / "loop.py").read_text())
    probes = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("hasattr", "getattr")
    ]
    assert probes == []


def test_import_jaxsr_and_main_help_without_torch():
    # torch blocked: any ``import torch`` raises ImportError. The absl programs define
    # the same flags, so the other two are not imported beside jaxsr.main.
    absl_programs = ("jaxsr.main", "jaxsr.benchmark", "jaxsr.embedding.__main__")
    names = sorted(n for n in modules() if n not in absl_programs)
    code = (
        # A finder that refuses torch, not sys.modules['torch'] = None: SciPy (imported by
        # scikit-learn) looks torch up in sys.modules and breaks on a None entry.
        "import sys, importlib, runpy\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('torch is blocked')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        f"for n in {names!r}:\n"
        "    importlib.import_module(n)\n"
        "sys.argv = ['jaxsr.main', '--help']\n"
        "runpy.run_module('jaxsr.main', run_name='__main__')\n"
    )
    env = subprocess_env()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    out = proc.stdout + proc.stderr
    # absl's --help exits with status 1 after printing the flags.
    assert proc.returncode in (0, 1) and "Traceback" not in out, out[-3000:]
    assert "--workdir" in out and "allow_config_change" in out, out


# The layers of DESIGN.md, bottom up: a module may import its own layer and the ones
# below, never one above. Keyed by the top-level module or folder under jaxsr/; the
# command-line programs (any layer's folder) are the top.
LAYERS = (
    {"errors", "files", "methods", "trees", "cli_flags"},  # the ground: no jaxsr beneath
    {"ops", "metrics"},  # image ops and metrics
    {"models", "losses", "data", "weights"},  # networks, losses, input, weight files
    {"model_dir", "convert", "recipes", "zoo"},  # model dirs, official keys, models by name
    {"train", "eval"},  # the generic loop and its plumbing; evaluation as a library
    {"tasks"},  # the methods' steps
    {
        "saved_model",
        "embedding",
        "bench",
        "deploy",
    },  # workdir -> model, studies, benchmarks, export
)
CLIS = CLI_MODULES | {
    "jaxsr.synthesize",
    "jaxsr.pix2pixhd_features",
    "jaxsr.data.prepare",
    "jaxsr.embedding.__main__",
    "jaxsr.models.__main__",
    "jaxsr",  # the package's own __init__: the user's entry (jaxsr.load_model)
}


def layer_of(module: str) -> int:
    if module in CLIS:
        return len(LAYERS)
    top = module.split(".")[1]
    for i, members in enumerate(LAYERS):
        if top in members:
            return i
    raise AssertionError(f"{module} is in no layer of LAYERS: add its folder to one")


def test_imports_run_one_way_between_folders(graph):
    upward = sorted(
        f"{m} (layer {layer_of(m)}) imports {t} (layer {layer_of(t)})"
        for m, targets in graph.items()
        for t in targets
        if layer_of(t) > layer_of(m)
    )
    assert upward == [], "\n".join(upward)


def test_the_layer_check_fails_on_an_upward_import():
    assert layer_of("jaxsr.models.rrdbnet") < layer_of("jaxsr.tasks.sr")
    graph = {"jaxsr.models.x": {"jaxsr.tasks.sr"}}
    upward = [(m, t) for m, ts in graph.items() for t in ts if layer_of(t) > layer_of(m)]
    assert upward == [("jaxsr.models.x", "jaxsr.tasks.sr")]
