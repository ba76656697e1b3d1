"""Training-step speed of a recipe, jaxsr beside the PyTorch reference, in one run.

    python -m jaxsr.benchmark --config=configs/esrgan_psnr.py [--steps=5] \
        [--config.data.batch_size=8 ...]

Reports, for the jaxsr step (jit, data-parallel over all local devices, LR made on
device inside the step) and for the equivalent PyTorch step (BasicSR's RRDBNet, L1,
Adam; LR precomputed, as BasicSR's data loader does): compile time, steps/s,
images/s, achieved GFLOP/s against the step's FLOPs (XLA's count of the jaxsr step,
used for both columns so they are comparable), and peak memory where the backend
reports it. Nothing here is asserted; numbers depend on the machine, which is printed.
"""

from __future__ import annotations

import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Recipe config file[:preset].")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps per framework (after warm-up).")
_TORCH = flags.DEFINE_bool("torch", True, "Also time the PyTorch reference step.")
flags.mark_flags_as_required(["config"])


def machine() -> str:
    dev = jax.devices()[0]
    kind = getattr(dev, "device_kind", dev.platform)
    return (
        f"{jax.device_count()}x {kind} ({dev.platform}), "
        f"host {platform.processor() or platform.machine()}"
        f" with {os.cpu_count()} CPU cores, jax {jax.__version__}"
    )


def _timed(fn, steps: int) -> float:
    """Seconds per call of ``fn`` (which must block until its result is ready)."""
    fn()  # warm-up (allocations, caches)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps


def bench_jaxsr(config, steps: int) -> dict:
    from jaxsr.tasks import make_task
    from jaxsr.train import sharding
    from jaxsr.train.loop import compile_train_step, init_state

    mesh = sharding.make_mesh()
    sharding.check_batch_size(config.data.batch_size, mesh)
    task = make_task(config)
    rng = np.random.default_rng(0)
    p = config.data.patch_size
    batch = {"gt": rng.integers(0, 256, (config.data.batch_size, p, p, 3), dtype=np.uint8)}
    batch = sharding.put_batch(batch, mesh)
    state = init_state(task, config, mesh)
    step = compile_train_step(task, mesh)
    t0 = time.perf_counter()
    consts = sharding.put_replicated(task.constants(), mesh)
    compiled = step.lower(state, batch, consts).compile()
    compile_s = time.perf_counter() - t0
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    flops = float(cost.get("flops", 0.0)) if cost else 0.0
    mem = compiled.memory_analysis()
    peak = None
    if mem is not None:
        peak = (
            mem.argument_size_in_bytes
            + mem.output_size_in_bytes
            + mem.temp_size_in_bytes
            - mem.alias_size_in_bytes
        )
    holder = {"state": state}

    def run():
        holder["state"], metrics = compiled(holder["state"], batch, consts)
        jax.block_until_ready(metrics["loss"])

    sec = _timed(run, steps)
    stats = jax.devices()[0].memory_stats() or {}
    if stats.get("peak_bytes_in_use"):
        peak = stats["peak_bytes_in_use"]
    return {"compile_s": compile_s, "step_s": sec, "flops": flops, "peak_bytes": peak}


def bench_torch(config, steps: int) -> dict:
    import torch

    from jaxsr.torch_reference import RRDBNetTorch

    if config.model.name != "rrdbnet" or config.scale != 4:
        return {"skipped": "the PyTorch reference covers RRDBNet ×4 only"}
    torch.manual_seed(0)
    # XLA flushes denormals on CPU; without this PyTorch can be 10x slower on small
    # weights for reasons unrelated to the model.
    torch.set_flush_denormal(True)
    m = config.model
    net = RRDBNetTorch(m.num_feat, m.num_block, m.num_grow_ch)
    opt = torch.optim.Adam(
        net.parameters(), lr=config.optim.lr, betas=(config.optim.b1, config.optim.b2)
    )
    n, p = config.data.batch_size, config.data.patch_size
    gt = torch.rand(n, 3, p, p)
    lq = torch.rand(n, 3, p // 4, p // 4)

    def run():
        opt.zero_grad(set_to_none=True)
        loss = torch.mean(torch.abs(net(lq) - gt))
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    run()  # first call: allocator and oneDNN primitive creation ("compile" for eager)
    first = time.perf_counter() - t0
    sec = _timed(run, steps)
    return {
        "compile_s": first,
        "step_s": sec,
        "threads": torch.get_num_threads(),
        "version": torch.__version__,
    }


def format_row(name: str, r: dict, batch: int, flops: float) -> str:
    if "skipped" in r:
        return f"{name:<22} skipped: {r['skipped']}"
    peak = f"{r['peak_bytes'] / 2**20:,.0f}MiB" if r.get("peak_bytes") else "n/a"
    gflops = flops / r["step_s"] / 1e9 if flops else float("nan")
    return (
        f"{name:<22}{r['compile_s']:>10.2f}{1 / r['step_s']:>10.3f}{batch / r['step_s']:>10.2f}"
        f"{gflops:>11.1f}{peak:>14}"
    )


def main(argv):
    del argv
    config = _CONFIG.value
    steps = _STEPS.value
    print(f"Machine: {machine()}")
    print(
        f"Recipe: model {dict(config.model)}, ×{config.scale}, batch {config.data.batch_size}, "
        f"HR patch {config.data.patch_size}, dtype {config.dtype}, remat {config.remat}"
    )
    jx = bench_jaxsr(config, steps)
    rows = [("jaxsr (jit)", jx)]
    if _TORCH.value:
        try:
            tr = bench_torch(config, steps)
            label = f"PyTorch {tr.get('version', '')} ({tr.get('threads', '?')} thr)"
            rows.append((label, tr))
        except ImportError:
            print("PyTorch is not installed (pip install -e '.[test]'); its column is skipped.")
    print(
        f"Train step, {steps} timed steps after warm-up; FLOPs/step (XLA count) = "
        f"{jx['flops'] / 1e9:,.1f} GFLOP"
    )
    print(
        f"{'':<22}{'compile s':>10}{'steps/s':>10}{'images/s':>10}{'GFLOP/s':>11}{'peak mem':>14}"
    )
    for name, r in rows:
        print(format_row(name, r, config.data.batch_size, jx["flops"]))
    sys.stdout.flush()


if __name__ == "__main__":
    app.run(main)
