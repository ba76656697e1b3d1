"""pix2pixHD's benchmark: the G + multi-scale D + VGG train step at ``--p2p_train_size``
and G inference at ``--p2p_infer_size``, float32 and bfloat16 each, beside the official
PyTorch iteration and forward (float32 and bf16 autocast).

Peak memory: the device's peak on accelerators; on a CPU, XLA's size of the compiled
program's buffers for jaxsr and the growth of the process's peak RSS for PyTorch.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from jaxsr.bench import harness
from jaxsr.tasks import make_task
from jaxsr.train import sharding
from jaxsr.train.loop import compile_train_step, init_state


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return h, w


def jaxsr_rows(config, steps: int, train_hw, infer_hw) -> dict:
    mesh = sharding.make_mesh()
    task = make_task(config)
    batch = sharding.put_batch(task.random_batch(config.data.batch_size, *train_hw), mesh)
    state = init_state(task, config, mesh)
    consts = sharding.put_replicated(task.constants(), mesh)
    t0 = time.perf_counter()
    compiled = compile_train_step(task, mesh).lower(state, batch, consts).compile()
    train = {"compile_s": time.perf_counter() - t0}
    holder = {"state": state}

    def step():
        holder["state"], metrics = compiled(holder["state"], batch, consts)
        jax.block_until_ready(metrics["loss"])

    train["step_s"] = harness.timed(step, steps)
    train["peak_bytes"] = harness.device_peak() or harness.program_bytes(compiled)
    x = task.encode(jax.tree.map(jnp.asarray, task.random_batch(1, *infer_hw)))[0]
    variables = {"params": holder["state"].params["g"]}
    t0 = time.perf_counter()
    infer_c = jax.jit(task.model.apply).lower(variables, x).compile()
    infer = {"compile_s": time.perf_counter() - t0}
    infer["step_s"] = harness.timed(lambda: jax.block_until_ready(infer_c(variables, x)), steps)
    infer["peak_bytes"] = harness.device_peak() or harness.program_bytes(infer_c)
    return {"train": train, "infer": infer}


def torch_rows(config, steps: int, train_hw, infer_hw, bf16: bool) -> dict:
    from benchmarks.torch_reference import pix2pixhd_steps

    step, forward = pix2pixhd_steps(config, train_hw, infer_hw, bf16)
    out = {}
    for part, fn in (("train", step), ("infer", forward)):
        rss0 = harness.rss()
        out[part] = harness.time_torch(fn, steps)
        out[part]["peak_bytes"] = max(0, harness.peak_rss() - rss0)
    return out


def run(config, steps: int, options: dict) -> None:
    train_hw, infer_hw = _size(options["p2p_train_size"]), _size(options["p2p_infer_size"])
    m, d = dict(config.model), dict(config.discriminator)
    print(f"Recipe: pix2pixHD, G {m}, D {d}, label_nc {config.label_nc}, remat {config.remat}")
    rows = []
    for dtype in ("float32", "bfloat16"):
        c = config.copy_and_resolve_references()
        c.dtype = dtype
        # The lr schedule counts epochs of the dataset; a benchmark needs no dataset.
        c.epochs.steps_per_epoch = c.epochs.steps_per_epoch or 1000
        rows.append((f"jaxsr {dtype}", jaxsr_rows(c, steps, train_hw, infer_hw)))
    if options["torch"]:
        try:
            for bf16 in (False, True):
                r = torch_rows(config, steps, train_hw, infer_hw, bf16)
                v = r["train"]["version"]
                rows.append((f"PyTorch {v} {'bf16 autocast' if bf16 else 'float32'}", r))
        except ImportError as e:
            print(f"The PyTorch column is skipped ({e}).")
    b, (th, tw) = config.data.batch_size, train_hw
    titles = (
        ("train", f"Train step G + {d['num_D']}-scale D + VGG, batch {b}, {tw}x{th}"),
        ("infer", f"G inference, 1 image {infer_hw[1]}x{infer_hw[0]}"),
    )
    for part, title in titles:
        print(f"\n{title} ({steps} timed steps after warm-up)")
        print(f"{'':<34}{'compile s':>10}{'steps/s':>10}{'peak mem':>12}")
        for name, r in rows:
            x = r[part]
            print(
                f"{name:<34}{x['compile_s']:>10.2f}{1 / x['step_s']:>10.3f}"
                f"{harness.mib(x.get('peak_bytes')):>12}"
            )
    print(
        "(peak mem: device peak on accelerators; on a CPU, XLA's buffer size of the compiled "
        "program for jaxsr, the rise of the process's peak RSS for PyTorch)"
    )
