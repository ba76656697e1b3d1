"""The timing harness: one recipe's train step on whatever devices exist, measured.

Everything comes from the task contract (``example_batch``, ``init``, ``phases``), so
any registered method is measured the same way: compile time (cold, and warm from the
persistent compilation cache), seconds per step, images/s, the step's FLOPs from XLA's
cost analysis, the achieved TFLOP/s and the MFU against the device's peak, and the
peak device memory.

MFU is the model FLOP utilisation: XLA's FLOP count of the step (per device) divided
by the step time and by the device's peak dense bf16 rate (:data:`PEAK_TFLOPS`, the
vendors' published figures), for fp32 and bf16 steps alike, as is customary.
"""

from __future__ import annotations

import os
import platform
import resource
import time

import jax

from jaxsr.tasks import make_task
from jaxsr.train import compile_cache, sharding
from jaxsr.train.loop import compile_train_step, init_state

# Peak dense bf16 TFLOP/s of one chip, by a substring of ``device.device_kind``
# (first match wins, so longer names come first).
PEAK_TFLOPS = (
    ("TPU v6", 918.0),  # Trillium (v6e)
    ("TPU v5p", 459.0),
    ("TPU v5 lite", 197.0),  # v5e
    ("TPU v5e", 197.0),
    ("TPU v4", 275.0),
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),  # SXM / HBM3
    ("A100", 312.0),
)


def device_kind() -> str:
    dev = jax.devices()[0]
    return getattr(dev, "device_kind", dev.platform)


def peak_tflops(kind: str | None = None) -> float | None:
    """The device's peak dense bf16 TFLOP/s, or ``None`` for a kind not in the table."""
    kind = device_kind() if kind is None else kind
    return next((peak for key, peak in PEAK_TFLOPS if key in kind), None)


def machine() -> str:
    dev = jax.devices()[0]
    return (
        f"{jax.device_count()}x {device_kind()} ({dev.platform}), "
        f"host {platform.processor() or platform.machine()} with {os.cpu_count()} CPU cores, "
        f"jax {jax.__version__}"
    )


def timed(fn, steps: int) -> float:
    """Seconds per call of ``fn`` (which must block until its result is ready)."""
    fn()  # warm-up (allocations, caches)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def device_peak() -> int | None:
    """Peak bytes in use on the first device (accelerators; ``None`` on a CPU)."""
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def device_limit() -> int | None:
    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("bytes_limit")


def program_bytes(compiled) -> int | None:
    """XLA's size of a compiled program's buffers (arguments + outputs + temporaries)."""
    mem = compiled.memory_analysis()
    if mem is None:
        return None
    return (
        mem.argument_size_in_bytes
        + mem.output_size_in_bytes
        + mem.temp_size_in_bytes
        - mem.alias_size_in_bytes
    )


def flops_of(compiled) -> float:
    """FLOPs of one call of a compiled program on one device (XLA's cost analysis)."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost.get("flops", 0.0)) if cost else 0.0


class TrainStep:
    """A recipe's train step (its last, most expensive phase), ready to compile and time."""

    def __init__(self, config):
        self.config = config
        self.mesh = sharding.make_mesh()
        sharding.check_batch_size(config.data.batch_size, self.mesh)
        self.task = make_task(config)
        self.host_batch = self.task.example_batch(config.data.batch_size)
        self.batch = sharding.put_batch(self.host_batch, self.mesh)
        self.state = init_state(self.task, config, self.mesh)
        self.consts = sharding.put_replicated(self.task.constants(), self.mesh)
        self.step = compile_train_step(self.task, self.mesh, self.task.phases()[-1][1])

    def compile(self):
        return self.step.lower(self.state, self.batch, self.consts).compile()

    def measure(self, steps: int, *, warm: bool = True) -> dict:
        """``compile_s``, ``warm_compile_s``, ``step_s``, ``images_s``, ``flops``
        (per device), ``tflops_s`` (all devices), ``mfu``, ``program_bytes`` (XLA's
        buffers of the step) and ``device_peak_bytes`` (the process's peak so far)."""
        t0 = time.perf_counter()
        compiled = self.compile()
        compile_s = time.perf_counter() - t0
        warm_s = float("nan")
        if warm:
            # Again, as a second run would: traced and lowered anew, loaded from the
            # persistent compilation cache that the first compile filled.
            jax.clear_caches()
            loaded = compile_cache.CompileCounter()
            t0 = time.perf_counter()
            self.compile()
            if loaded.loaded and not loaded.compiled:
                warm_s = time.perf_counter() - t0
        holder = {"state": self.state}

        def run():
            holder["state"], metrics = compiled(holder["state"], self.batch, self.consts)
            jax.block_until_ready(metrics["loss"])

        sec = timed(run, steps)
        self.state = holder["state"]
        flops = flops_of(compiled)
        peak = peak_tflops()
        return {
            "compile_s": compile_s,
            "warm_compile_s": warm_s,
            "step_s": sec,
            "images_s": self.config.data.batch_size / sec,
            "flops": flops,
            "tflops_s": flops * jax.device_count() / sec / 1e12,
            "mfu": flops / sec / (peak * 1e12) if peak else None,
            "program_bytes": program_bytes(compiled),
            "device_peak_bytes": device_peak(),
            "compiled": compiled,
        }


def largest_batch(config, *, limit: int | None = None, start: int | None = None) -> int | str:
    """The largest global batch (doubling from the recipe's) whose compiled step fits
    the device's memory by XLA's own account; compiles only, runs nothing."""
    limit = device_limit() if limit is None else limit
    if not limit:
        return "no device memory limit (CPU)"
    batch, fits = start or config.data.batch_size, 0
    for _ in range(8):
        trial = config.copy_and_resolve_references()
        trial.data.batch_size = batch
        try:
            need = program_bytes(TrainStep(trial).compile())
        except Exception as e:  # XLA's out-of-memory at compile time
            if "memory" not in str(e).lower() and "resource" not in str(e).lower():
                raise
            break
        if need is None or need > limit:
            break
        fits, batch = batch, batch * 2
    return fits or f"< {start or config.data.batch_size}"


def rss() -> int:
    """The process's resident memory now (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mib(n) -> str:
    return f"{n / 2**20:,.0f}MiB" if n else "n/a"


def time_torch(run, steps: int) -> dict:
    """A PyTorch step: its first call (allocator and oneDNN primitive creation, the
    "compile" of eager mode), then seconds per step."""
    import torch

    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    return {
        "compile_s": first,
        "step_s": timed(run, steps),
        "threads": torch.get_num_threads(),
        "version": torch.__version__,
    }


def _torch_piece(config, kind: str):
    """The registered method's PyTorch piece ``kind`` built for ``config`` (``None``:
    the method has none, or not for this configuration)."""
    from jaxsr import methods

    ref = methods.method_of_task(config.task).bench.get(kind)
    if ref is None:
        return None
    import torch

    torch.manual_seed(0)
    # XLA flushes denormals on CPU; without this PyTorch can be 10x slower on small
    # weights for reasons unrelated to the model.
    torch.set_flush_denormal(True)
    return methods.load(ref)(config)


def torch_train(config, steps: int) -> dict:
    """The method's official PyTorch iteration (``Method.bench['torch_train']``)."""
    step = _torch_piece(config, "torch_train")
    if step is None:
        return {"skipped": f"no PyTorch reference step for this {config.task} recipe"}
    return time_torch(step, steps)


def input_rate(task, config) -> float | str:
    """Images/s the training input pipeline (decode, crop, flip; grain threads) delivers
    to this process, after its first batch (thread start-up, first reads), over four
    times as many batches as grain prefetches (so the prefetched ones hardly count); or
    why it could not be measured (e.g. the recipe's dataset folder is not here)."""
    from jaxsr.errors import UserError

    batches = 4 * max(8, config.data.threads)
    try:
        it = iter(task.train_data(0, 1))
        next(it)
    except UserError as e:
        return str(e)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * config.data.batch_size / (time.perf_counter() - t0)


def _tiled(fn, size: int, scale: int, tile: int):
    import numpy as np

    from jaxsr.ops.tiling import tiled_apply

    img = np.random.default_rng(0).uniform(0, 1, (size, size, 3)).astype(np.float32)
    return lambda: tiled_apply(fn, img, scale=scale, tile=tile, overlap=min(32, tile // 4), batch=2)


def _inference_model(config):
    """The recipe's generator at the benchmark's dtype with random weights (seed 0)."""
    import jax.numpy as jnp

    from jaxsr import methods
    from jaxsr.models import build_model

    name, kwargs = methods.task_class(config.task).model_spec(config)
    model = build_model(name, dtype=jnp.dtype(config.dtype), **kwargs)
    return model, model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))


def infer_jaxsr(config, size: int, tile: int) -> dict:
    """The generator (random weights) on a ``size``² image in ``tile``² tiles."""
    import jax.numpy as jnp

    model, variables = _inference_model(config)
    apply = jax.jit(model.apply)
    t0 = time.perf_counter()
    apply.lower(variables, jnp.zeros((2, tile, tile, 3))).compile()
    compile_s = time.perf_counter() - t0
    run = _tiled(lambda t: apply(variables, jnp.asarray(t)), size, config.scale, tile)
    run()
    t0 = time.perf_counter()
    run()
    sec = time.perf_counter() - t0
    return {"compile_s": compile_s, "sec": sec, "peak_bytes": device_peak() or peak_rss()}


def infer_onnx(config, size: int, tile: int) -> dict:
    """The same generator exported to ONNX (``jaxsr.deploy``, float32, dynamic sizes)
    in ONNX Runtime's CPU provider, the same tiler; "compile" is export + session."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return {"skipped": "onnxruntime is not installed (pip install -e '.[export]')"}
    from jaxsr.deploy import formats, runtimes
    from jaxsr.tasks.signature import image_graph

    if config.dtype != "float32":
        return {"skipped": f"the ONNX row runs float32, the recipe computes in {config.dtype}"}
    model, variables = _inference_model(config)
    t0 = time.perf_counter()
    sig = image_graph(model, variables, multiple=getattr(model, "size_multiple", 1))
    try:
        session = runtimes.OnnxModel(formats.onnx_bytes(sig, None, {"jaxsr_scale": sig.scale}))
    except Exception as e:  # a method's network may use an op the converter lacks
        return {"skipped": f"not exportable to ONNX ({type(e).__name__}: {str(e)[:120]})"}
    compile_s = time.perf_counter() - t0
    run = _tiled(session, size, config.scale, tile)
    run()
    t0 = time.perf_counter()
    run()
    return {"compile_s": compile_s, "sec": time.perf_counter() - t0, "peak_bytes": peak_rss()}


def infer_torch(config, size: int, tile: int) -> dict:
    """The method's PyTorch network (``Method.bench['torch_infer']``), the same tiler."""
    net = _torch_piece(config, "torch_infer")
    if net is None:
        return {"skipped": f"no PyTorch reference network for this {config.task} recipe"}
    import torch

    def fn(tiles):
        with torch.no_grad():
            out = net(torch.from_numpy(tiles.transpose(0, 3, 1, 2).copy()))
        return out.numpy().transpose(0, 2, 3, 1)

    run = _tiled(fn, size, config.scale, tile)
    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    run()
    return {"compile_s": first, "sec": time.perf_counter() - t0, "peak_bytes": peak_rss()}
