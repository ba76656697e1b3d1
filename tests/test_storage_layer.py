"""Every file jaxsr reads or writes goes through ``jaxsr.files``: no module calls the
builtin ``open``, ``os``/``os.path`` file functions, ``shutil``, ``np.load/save`` or
``Image.open`` on a path that may be remote (``gs://``), except the local-only cases
listed here, each with the reason it is local."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "jaxsr")

OS_IO = {
    "open", "listdir", "makedirs", "mkdir", "remove", "unlink", "rename", "replace",
    "rmdir", "removedirs", "scandir", "walk", "stat", "lstat", "symlink", "link",
    "chmod", "truncate", "utime",
}  # fmt: skip
OS_PATH_IO = {
    "exists", "lexists", "isfile", "isdir", "islink", "getsize", "getmtime",
    "realpath", "abspath", "samefile",
}  # fmt: skip
NUMPY_IO = {"load", "save", "savez", "savez_compressed", "fromfile", "loadtxt", "savetxt"}

# (file, enclosing function, call): why the path is local.
LOCAL_ONLY = {
    # The published models' wheels and their conversion cache are local by nature (an
    # installed package; a per-user cache locked with flock); a zoo name is never a URL.
    ("zoo.py", "installed", "os.path.isfile"): "an installed wheel's file",
    ("zoo.py", "is_name", "os.path.exists"): "a local name that shadows a zoo name",
    ("zoo.py", "model_path", "open"): "the local cache's flock file",
    # Writes into the local temporary of files.atomic_path / files.atomic_dir, which
    # then becomes the (local or remote) target.
    ("convert/official.py", "convert", "open"): "files.atomic_path temporary",
    ("convert/official.py", "convert", "np.savez"): "files.atomic_path temporary",
    ("model_dir.py", "save_model", "open"): "files.atomic_dir temporary",
    ("model_dir.py", "save_model", "np.savez"): "files.atomic_dir temporary",
    ("pix2pixhd_features.py", "save_centres", "open"): "files.atomic_path temporary",
    ("pix2pixhd_features.py", "save_centres", "np.savez"): "files.atomic_path temporary",
    ("data/records.py", "write_dataset", "open"): "files.atomic_dir temporary",
    ("data/records.py", "write_dataset", "os.remove"): "files.atomic_dir temporary",
    ("data/images.py", "write_image", "open"): "files.atomic_path temporary",
    ("deploy/export.py", "export_model", "open"): "files.atomic_path temporary",
    # The local workdir lock (flock); remote workdirs use files.remote.ObjectLock.
    ("train/workdir.py", "_lock", "os.open"): "local lock file (flock)",
    # Local staging of TensorBoard events for a remote workdir.
    ("train/metric_logs.py", "close", "shutil.rmtree"): "local staging folder",
    # The event file: in a local workdir, or in that staging folder (metric_logs).
    ("train/events.py", "__init__", "open"): "local workdir or staging folder",
    ("train/events.py", "__init__", "os.makedirs"): "local workdir or staging folder",
    ("train/workdir.py", "save_parameters", "open"): "files.atomic_path temporary",
    # Facts of this machine and files of the installed package.
    ("bench/harness.py", "rss", "open"): "/proc/self/statm",
    ("data/pipeline.py", "available_memory", "open"): "/proc/meminfo",
    ("metrics.py", "_niqe_model", "os.path.abspath"): "the package's own data file",
    ("metrics.py", "_niqe_model", "np.load"): "the package's own data file",
}


def _dotted(node) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _is_file_call(call: ast.Call) -> bool:
    name = _dotted(call.func)
    parts = name.split(".")
    if name == "open":
        return True
    if parts[0] == "os" and len(parts) == 2:
        return parts[1] in OS_IO
    if parts[:2] == ["os", "path"] and len(parts) == 3:
        return parts[2] in OS_PATH_IO
    if parts[0] == "shutil":
        return True
    if parts[0] in ("np", "numpy") and len(parts) == 2:
        return parts[1] in NUMPY_IO
    if name == "Image.open":  # bytes in memory or a files.open_read file object are fine
        arg = call.args[0] if call.args else None
        return not (
            isinstance(arg, ast.Call) and _dotted(arg.func) in ("io.BytesIO",)
        ) and not isinstance(arg, ast.Name)
    return False


def _visit(node, function: str, rel: str, found: list) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            _visit(child, child.name, rel, found)
            continue
        if isinstance(child, ast.Call) and _is_file_call(child):
            found.append((rel, function, _dotted(child.func)))
        _visit(child, function, rel, found)


def file_calls():
    """``(file, function, call)`` of every file-system call outside ``jaxsr/files``."""
    found = []
    for dirpath, _, names in os.walk(PACKAGE):
        for n in names:
            if not n.endswith(".py"):
                continue
            path = os.path.join(dirpath, n)
            rel = os.path.relpath(path, PACKAGE)
            if rel.startswith("files" + os.sep):
                continue
            with open(path) as f:
                tree = ast.parse(f.read(), filename=path)

            _visit(tree, "<module>", rel, found)
    return found


def test_no_file_call_bypasses_the_storage_layer():
    calls = file_calls()
    unexpected = sorted({c for c in calls if c not in LOCAL_ONLY})
    assert not unexpected, (
        "these calls bypass jaxsr.files (a gs:// path would be read as a local one); use "
        f"jaxsr.files or, if the path can only be local, list it in LOCAL_ONLY: {unexpected}"
    )
    stale = sorted(set(LOCAL_ONLY) - set(calls))
    assert not stale, f"LOCAL_ONLY lists calls that no longer exist: {stale}"


def test_the_walker_finds_what_it_looks_for(tmp_path):
    """The check itself: each kind of call is found (so the test above can fail)."""
    src = (
        "import os, shutil\nimport numpy as np\nfrom PIL import Image\n"
        "def f(p):\n    open(p)\n    os.listdir(p)\n    os.path.isdir(p)\n"
        "    shutil.copy(p, p)\n    np.load(p)\n    Image.open(p + 'x')\n    os.path.join(p, 'a')\n"
    )
    calls = [
        _dotted(c.func)
        for c in ast.walk(ast.parse(src))
        if isinstance(c, ast.Call) and _is_file_call(c)
    ]
    assert calls == ["open", "os.listdir", "os.path.isdir", "shutil.copy", "np.load", "Image.open"]
