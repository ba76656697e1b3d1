"""Published models through jaxsr beside their own runtime: ``python -m jaxsr.benchmark
--published=realesrgan-x4plus,realesr-animevideov3-x4,realcugan-se-x2 --infer_size=256``.

Each model (:mod:`jaxsr.zoo`) runs on one ``size``² image, whole, three ways in this
one process with the same number of threads: jaxsr's XLA program (jit), jaxsr's ONNX
export in ONNX Runtime's CPU provider, and ncnn's CPU runtime on the original
``.param``/``.bin`` (fp32 arithmetic, as the parity tests). "compile" is jit compile,
export + session creation, or ncnn's load. Real-CUGAN's ncnn graph is the network on a
padded input (its program pads, maps and adds the ×4 residual), so ncnn gets the padded
image; the padding costs nothing measurable beside the network. Peak memory is the
process's peak RSS so far (rows run in the order printed), as in the other CPU rows.
"""

from __future__ import annotations

import os
import time

import jax
import numpy as np

from jaxsr import files, zoo
from jaxsr.bench.harness import mib, peak_rss, timed


def _image(size: int) -> np.ndarray:
    from jaxsr.data import builtin_photo

    photo = builtin_photo("coffee").astype(np.float32) / 255
    reps = (-(-size // photo.shape[0]), -(-size // photo.shape[1]), 1)
    return np.ascontiguousarray(np.tile(photo, reps)[:size, :size])


def _xla(module, variables, x, steps: int) -> dict:
    apply = jax.jit(module.apply)
    t0 = time.perf_counter()
    apply.lower(variables, x[None]).compile()
    compile_s = time.perf_counter() - t0
    sec = timed(lambda: apply(variables, x[None]).block_until_ready(), steps)
    return {"compile_s": compile_s, "sec": sec}


def _onnx(task, module, variables, x, steps: int) -> dict:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return {"skipped": "onnxruntime is not installed (pip install -e '.[export]')"}
    from jaxsr.deploy import formats, runtimes

    t0 = time.perf_counter()
    sig = task.graph(module, variables)  # the graph jaxsr.export writes
    try:
        session = runtimes.OnnxModel(formats.onnx_bytes(sig, None, {"jaxsr_scale": sig.scale}))
    except Exception as e:  # an op the ONNX converter cannot take
        return {"skipped": f"not exportable to ONNX ({type(e).__name__}: {str(e)[:100]})"}
    compile_s = time.perf_counter() - t0
    return {"compile_s": compile_s, "sec": timed(lambda: session(x[None]), steps)}


def _ncnn(name: str, module, x, steps: int) -> dict:
    try:
        import ncnn
    except ImportError:
        return {"skipped": "ncnn is not installed (pip install ncnn)"}
    from jaxsr.models.realcugan import _PADDING, RealCUGAN
    from jaxsr.weights.ncnn import parse_param

    param = zoo.installed(name)
    t0 = time.perf_counter()
    layers = parse_param(files.read_text(param), param)
    net = ncnn.Net()
    for option in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic"):
        setattr(net.opt, option, False)
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = os.cpu_count() or 1
    net.load_param(param)
    net.load_model(param[: -len(".param")] + ".bin")
    compile_s = time.perf_counter() - t0
    if isinstance(module, RealCUGAN):
        pad = _PADDING[module.scale][0]
        x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    chw = np.ascontiguousarray(x.transpose(2, 0, 1))

    def run():
        mat = ncnn.Mat(chw)  # a view of chw, alive until extract returns
        ex = net.create_extractor()
        ex.input(layers[0].outputs[0], mat)
        _, out = ex.extract(layers[-1].outputs[0])
        return np.array(out)

    return {"compile_s": compile_s, "sec": timed(run, steps)}


def run(names: str, size: int, steps: int) -> None:
    from jaxsr.saved_model import load_model_and_task

    x = _image(size)
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        module, variables, task = load_model_and_task(name)  # converted once into the cache
        measures = (
            ("jaxsr (XLA, jit)", _xla, (module, variables, x, steps)),
            ("jaxsr ONNX (onnxruntime)", _onnx, (task, module, variables, x, steps)),
            (f"ncnn {_ncnn_version()} (CPU)", _ncnn, (name, module, x, steps)),
        )
        # Peak RSS read after each row: the process's peak so far, rows in this order.
        rows = [(label, {**fn(*args), "peak": peak_rss()}) for label, fn, args in measures]
        print(f"\n{name}: one {size}x{size} input, ×{module.scale}, {steps} timed runs")
        print(f"{'':<26}{'compile s':>10}{'seconds':>10}{'out MP/s':>10}{'peak RSS':>12}")
        for label, r in rows:
            if "skipped" in r:
                print(f"{label:<26} skipped: {r['skipped']}")
                continue
            out_mp = (size * module.scale) ** 2 / 1e6 / r["sec"]
            print(
                f"{label:<26}{r['compile_s']:>10.2f}{r['sec']:>10.3f}{out_mp:>10.3g}"
                f"{mib(r['peak']):>12}"
            )
    print("(peak RSS: the process's peak so far; threads: every runtime uses all cores)")


def _ncnn_version() -> str:
    try:
        import ncnn

        return ncnn.__version__
    except (ImportError, AttributeError):
        return ""
