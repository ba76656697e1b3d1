"""Speed and memory of a recipe, jaxsr beside the PyTorch reference, in one run.

    python -m jaxsr.benchmark --config=configs/esrgan_psnr.py [--steps=5] \
        [--infer_size=512 --tile=256 --infer_only] [--config.data.batch_size=8 ...]

**Train step.** The jaxsr step (jit, data-parallel over all devices, LR made on device
inside the step; for ``configs/esrgan.py`` G + D + VGG19 in one step) against the
equivalent PyTorch step (BasicSR's layer order: RRDBNet + L1 + Adam, or the ESRGAN G
and D steps with VGG19 ``conv5_4``; LR precomputed, as BasicSR's loader does):
compile time, steps/s, images/s, achieved GFLOP/s against the step's FLOPs (XLA's count
of the jaxsr step, used for both columns so they are comparable), peak memory. The jaxsr
step is compiled twice: cold, into an empty persistent compilation cache, and warm, as
a second run (or a resumed one) would, from that cache.

**DASR** (``configs/dasr.py``): the joint (stage 2) step with the degradations synthesised
inside the jitted step, beside the same step fed by a host-side numpy/scipy degradation
pipeline (the host time per batch is added: a synchronous loader), and the official
PyTorch iteration (degradation on the device as ``SRMDPreprocessing``, MoCo, G, Adam).

**Tiled inference** (``--infer_only`` for this table alone). The generator on an
``infer_size``² image in ``tile``² tiles (``jaxsr.ops.tiling``): XLA (jit), the same
weights exported to ONNX and run by ONNX Runtime (``jaxsr.deploy``), and PyTorch, all
through the same tiler: seconds, megapixels of input per second and the process's
peak resident memory (CPU) or the device's peak (GPU/TPU).

**pix2pixHD** (``configs/pix2pixhd.py``): the G + multi-scale D step (LSGAN + feature
matching + VGG19) at ``--p2p_train_size`` (512×256 by default) and G inference at
``--p2p_infer_size`` (1024×512), each in float32 and bfloat16, beside the official
PyTorch iteration / forward (fp32, and bf16 under CPU/CUDA autocast). Peak memory: the
device's peak on accelerators; on a CPU, XLA's size of the compiled program's buffers
for jaxsr and the growth of the process's peak RSS for PyTorch.

**Precision** (``--precision_table``): the jaxsr train step in float32 and bfloat16, each
with and without rematerialisation (``remat``), for any recipe.

**SPSAGAN** (``configs/spsagan.py``): the generator step at LR sides ``--spsa_sizes``,
blockwise and dense attention beside ESRGAN's RRDBNet (``jaxsr.bench.spsagan``).

**Suites** (``--suite=paper|tiny``): every recipe's train step with MFU
(:mod:`jaxsr.bench.suite`).

This file parses flags and prints tables; the measuring is :mod:`jaxsr.bench.harness`,
and what is method-specific (the PyTorch reference step and network, DASR's
host-degradation row, pix2pixHD's and SPSAGAN's own benchmarks) comes from each
method's ``bench`` entry in :mod:`jaxsr.methods`.

Nothing is asserted; numbers depend on the machine, which is printed first.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile

from absl import app, flags
from ml_collections import config_flags

from jaxsr import methods
from jaxsr.bench import harness, published, suite
from jaxsr.cli_flags import console_logging, parse_absl_flags
from jaxsr.errors import cli
from jaxsr.train import compile_cache

_CONFIG = config_flags.DEFINE_config_file("config", None, "Recipe config file[:preset].")
_STEPS = flags.DEFINE_integer(
    "steps", 5, "Timed steps per framework (after warm-up).", lower_bound=1
)
_TORCH = flags.DEFINE_bool("torch", True, "Also time the PyTorch reference.")
_INFER = flags.DEFINE_integer(
    "infer_size", 512, "Side of the tiled-inference input; 0 = skip.", lower_bound=0
)
_TILE = flags.DEFINE_integer("tile", 256, "Tile side for tiled inference.", lower_bound=1)
_INFER_ONLY = flags.DEFINE_bool("infer_only", False, "Only the tiled-inference table.")
_P2P_TRAIN = flags.DEFINE_string("p2p_train_size", "512x256", "pix2pixHD train WxH.")
_P2P_INFER = flags.DEFINE_string("p2p_infer_size", "1024x512", "pix2pixHD inference WxH.")
_SPSA_SIZES = flags.DEFINE_string("spsa_sizes", "24,64,128", "SPSAGAN: LR sides to time.")
_PRECISION = flags.DEFINE_bool(
    "precision_table", False, "Only the train step in fp32/bf16 x remat off/on, side by side."
)
_SUITE = flags.DEFINE_enum(
    "suite", None, ["paper", "tiny"], "Time every recipe's train step (see jaxsr.bench.suite)."
)
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "With --suite: list the rows, time nothing.")
_ONLY = flags.DEFINE_string("only", "", "With --suite: only these recipes (comma-separated).")
_PUBLISHED = flags.DEFINE_string(
    "published",
    "",
    "Published models by name (comma-separated): jaxsr XLA, jaxsr ONNX Runtime and ncnn "
    "on one --infer_size² input (jaxsr.bench.published).",
)
_BUDGET = flags.DEFINE_float(
    "budget_s", 480.0, "With --suite: start no row after this long.", lower_bound=0.0
)

_TORCH_MISSING = (
    "it needs torch (pip install -e '.[test]') and the repository's benchmarks/ folder "
    "(run from the repository root)"
)


def working(what: str) -> None:
    """A progress line on stderr (a measurement can take minutes: compiles, warm-up)."""
    print(f"... {what}", file=sys.stderr, flush=True)


def print_train(config, steps: int) -> bool:
    """The train-step table; returns whether the PyTorch column could be run."""
    working(f"jaxsr train step: compiling (cold, then from the cache), {steps} timed steps")
    step = harness.TrainStep(config)
    jx = step.measure(steps)
    rows = [("jaxsr (jit)", {**jx, "peak_bytes": jx["device_peak_bytes"] or jx["program_bytes"]})]
    bench = methods.method_of_task(config.task).bench
    if "jaxsr_extra" in bench:
        rows.append(methods.load(bench["jaxsr_extra"])(step, steps))
    torch_ok = _TORCH.value
    if torch_ok:
        working(f"PyTorch train step: {steps} timed steps after warm-up")
        try:
            tr = harness.torch_train(config, steps)
            label = (
                "PyTorch" if "skipped" in tr else f"PyTorch {tr['version']} ({tr['threads']} thr)"
            )
            rows.append((label, tr))
        except ImportError as e:
            torch_ok = False
            print(f"The PyTorch column is skipped ({e}): {_TORCH_MISSING}.")
    print(
        f"\nTrain step ({steps} timed steps after warm-up; FLOPs/step by XLA = "
        f"{jx['flops'] / 1e9:,.1f} GFLOP; jaxsr compile: cold {jx['compile_s']:.2f} s, "
        f"warm {jx['warm_compile_s']:.2f} s from the persistent compilation cache)"
    )
    print(
        f"{'':<26}{'compile s':>10}{'steps/s':>10}{'images/s':>10}{'GFLOP/s':>10}{'peak mem':>12}"
    )
    b = config.data.batch_size
    for name, r in rows:
        if "skipped" in r:
            print(f"{name:<26} skipped: {r['skipped']}")
            continue
        if "note" in r:
            print(r["note"])
        gflops = jx["flops"] / r["step_s"] / 1e9 if jx["flops"] else float("nan")
        print(
            f"{name:<26}{r['compile_s']:>10.2f}{1 / r['step_s']:>10.3f}{b / r['step_s']:>10.2f}"
            f"{gflops:>10.1f}{harness.mib(r.get('peak_bytes')):>12}"
        )
    working("the input pipeline's rate")
    step_images, host_images = b / jx["step_s"], harness.input_rate(step.task, config)
    where = (
        f"Input pipeline ({config.data.train.kind}, {config.data.threads} threads"
        f"{f', {config.data.workers} workers' if config.data.get('workers') else ''})"
    )
    if isinstance(host_images, str):
        print(f"{where}: not measured ({host_images})")
    else:
        verdict = "keeps up with" if host_images >= step_images else "is SLOWER than"
        print(
            f"{where}: {host_images:.1f} images/s, which {verdict} the jaxsr step's "
            f"{step_images:.1f} images/s."
        )
    return torch_ok


def print_inference(config, size: int, tile: int, torch_ok: bool) -> None:
    working(f"tiled inference of a {size}x{size} input: jaxsr")
    rows = [("jaxsr (XLA, jit)", harness.infer_jaxsr(config, size, tile))]
    working("tiled inference: the ONNX export in ONNX Runtime")
    rows.append(("jaxsr ONNX (onnxruntime)", harness.infer_onnx(config, size, tile)))
    if torch_ok:
        working("tiled inference: PyTorch")
        try:
            rows.append(("PyTorch (eager)", harness.infer_torch(config, size, tile)))
        except ImportError as e:
            rows.append(("PyTorch (eager)", {"skipped": f"{e}: {_TORCH_MISSING}"}))
    print(f"\nTiled inference: {size}x{size} input, ×{config.scale}, tiles {tile}, batch 2")
    print(f"{'':<26}{'compile s':>10}{'seconds':>10}{'MP/s':>10}{'peak mem':>12}")
    for name, r in rows:
        if "skipped" in r:
            print(f"{name:<26} skipped: {r['skipped']}")
            continue
        mp = size * size / 1e6 / r["sec"]
        print(
            f"{name:<26}{r['compile_s']:>10.2f}{r['sec']:>10.2f}{mp:>10.3g}"
            f"{harness.mib(r['peak_bytes']):>12}"
        )
    print("(peak mem: device peak on accelerators, else the process's peak RSS so far)")


def print_precision_table(config, steps: int) -> None:
    """The jaxsr train step in float32 and bfloat16, each with and without remat."""
    print(
        f"\nPrecision and memory ({steps} timed steps; peak mem: device peak on "
        "accelerators, XLA's buffer size of the compiled step on a CPU)"
    )
    print(
        f"{'dtype':<10}{'remat':<7}{'compile s':>10}{'steps/s':>10}{'images/s':>10}{'peak mem':>12}"
    )
    b = config.data.batch_size
    for dtype in ("float32", "bfloat16"):
        for remat in (False, True):
            c = config.copy_and_resolve_references()
            c.dtype, c.remat = dtype, remat
            working(f"train step in {dtype}, remat {'on' if remat else 'off'}")
            r = harness.TrainStep(c).measure(steps, warm=False)
            peak = r["device_peak_bytes"] or r["program_bytes"]
            print(
                f"{dtype:<10}{'on' if remat else 'off':<7}{r['compile_s']:>10.2f}"
                f"{1 / r['step_s']:>10.3f}{b / r['step_s']:>10.2f}{harness.mib(peak):>12}"
            )
            sys.stdout.flush()


@cli
def main(argv):
    del argv
    console_logging()  # jaxsr's own lines; JAX's and absl's notices only from WARNING up
    if _SUITE.value and _DRY_RUN.value:
        print(suite.dry_run(_SUITE.value, _ONLY.value))
        return
    # A fresh, empty cache: the first compile is cold, the second one warm.
    cache = tempfile.mkdtemp(prefix="jaxsr-benchmark-xla-")
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    compile_cache.enable(cache)
    if _PUBLISHED.value:
        print(f"Machine: {harness.machine()}")
        published.run(_PUBLISHED.value, size=_INFER.value or 256, steps=_STEPS.value)
        return
    if _SUITE.value:
        suite.run(_SUITE.value, steps=_STEPS.value, only=_ONLY.value, budget_s=_BUDGET.value)
        return
    config = _CONFIG.value
    if config is None:
        raise app.UsageError("Pass --config=configs/<recipe>.py or --suite=paper|tiny.")
    steps = _STEPS.value
    print(f"Machine: {harness.machine()}")
    custom = methods.method_of_task(config.task).bench.get("custom")
    if custom:
        options = {
            "torch": _TORCH.value,
            "p2p_train_size": _P2P_TRAIN.value,
            "p2p_infer_size": _P2P_INFER.value,
            "spsa_sizes": _SPSA_SIZES.value,
        }
        methods.load(custom)(config, steps, options)
        return
    print(
        f"Recipe: task {config.task}, model {dict(config.model)}, ×{config.scale}, "
        f"batch {config.data.batch_size}, HR patch {config.data.patch_size}, "
        f"dtype {config.dtype}, remat {config.remat}"
    )
    if _PRECISION.value:
        print_precision_table(config, steps)
        return
    torch_ok = _TORCH.value
    if not _INFER_ONLY.value:
        torch_ok = print_train(config, steps)
    if _INFER.value:
        print_inference(config, _INFER.value, _TILE.value, torch_ok)
    sys.stdout.flush()


if __name__ == "__main__":
    app.run(main, flags_parser=parse_absl_flags)
