"""SPSAGAN's generator beside ESRGAN's, across LR sizes: the cost of the attention.

``python -m jaxsr.benchmark --config=configs/spsagan.py[:demo]`` runs this (the method's
``custom`` benchmark in :mod:`jaxsr.methods`): one
generator train step (G forward + backward with L1, Adam update, donated state) at
each LR side of ``--spsa_sizes`` for

* ESRGAN's RRDBNet of the same width and depth (no attention, dense blocks),
* the SPSAGAN generator with its attention in query blocks (``model.query_block``),
* the same with the dense ``N × N`` attention map (``query_block = 0``),

in one process on one machine: seconds per step and peak memory (XLA's size of the
compiled program's buffers: arguments, outputs and temporaries, on any backend, so the
rows compare). A size that runs out of memory is reported as such, not fatal.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsr.models import build_model


def _host_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _generator_step(model, needs_prior: bool):
    tx = optax.adam(1e-4)

    def loss_fn(params, lq, seg, gt):
        out = (
            model.apply({"params": params}, lq, seg)
            if needs_prior
            else model.apply({"params": params}, lq)
        )
        return jnp.mean(jnp.abs(out - gt))

    def step(params, opt_state, lq, seg, gt):
        loss, grads = jax.value_and_grad(loss_fn)(params, lq, seg, gt)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return tx, jax.jit(step, donate_argnums=(0, 1))


def bench_generator(model, needs_prior: bool, batch: int, side: int, steps: int, timed, peak):
    """Compile seconds, seconds per step and peak bytes of one generator train step."""
    rng = np.random.default_rng(0)
    k = getattr(model, "num_classes", 8)
    lq = jnp.asarray(rng.uniform(0, 1, (batch, side, side, 3)), jnp.float32)
    gt = jnp.asarray(rng.uniform(0, 1, (batch, 4 * side, 4 * side, 3)), jnp.float32)
    seg = jax.nn.softmax(jnp.asarray(rng.normal(size=(batch, 4 * side, 4 * side, k))), -1)
    args = (lq, seg) if needs_prior else (lq,)
    params = model.init(jax.random.key(0), *args)["params"]
    tx, step = _generator_step(model, needs_prior)
    holder = {"p": params, "o": tx.init(params)}
    t0 = time.perf_counter()
    try:
        compiled = step.lower(holder["p"], holder["o"], lq, seg, gt).compile()
    except Exception as e:  # XlaRuntimeError: RESOURCE_EXHAUSTED while compiling
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"}
    out = {"compile_s": time.perf_counter() - t0, "peak_bytes": peak(compiled)}
    if jax.default_backend() == "cpu" and (out["peak_bytes"] or 0) > 0.7 * _host_memory():
        return {"error": f"needs {out['peak_bytes'] / 2**30:.1f} GiB, more than 70% of host RAM"}

    def run():
        holder["p"], holder["o"], loss = compiled(holder["p"], holder["o"], lq, seg, gt)
        jax.block_until_ready(loss)

    try:
        out["step_s"] = timed(run, steps)
    except Exception as e:
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"}
    return out


def run(config, steps: int, options: dict) -> None:
    """Print the table (see the module docstring); ``options['spsa_sizes']``: LR sides."""
    from jaxsr.bench.harness import mib, timed
    from jaxsr.bench.harness import program_bytes as peak

    sides = [int(v) for v in options["spsa_sizes"].split(",") if v]
    m = dict(config.model)
    m.pop("name")
    batch = config.data.batch_size
    esrgan = build_model(
        "rrdbnet",
        scale=4,
        num_feat=m["num_feat"],
        num_block=m["num_block"],
        num_grow_ch=m["num_grow_ch"],
        dtype=jnp.dtype(config.dtype),
    )
    spsagan = build_model("spsagan", scale=4, dtype=jnp.dtype(config.dtype), **m)
    rows = [
        ("ESRGAN RRDBNet", esrgan, False),
        (f"SPSAGAN, blocks of {m['query_block']}", spsagan, True),
        ("SPSAGAN, dense attention", spsagan.clone(query_block=0), True),
    ]
    print(
        f"\nGenerator train step (L1 + Adam), batch {batch}, nf {m['num_feat']}, "
        f"nb {m['num_block']}, gc {m['num_grow_ch']}, SPSAGAN trunk '{m['connectivity']}' "
        f"({steps} timed steps after warm-up)"
    )
    print(f"{'LR side':<9}{'':<30}{'compile s':>10}{'s/step':>10}{'peak mem':>12}")
    for side in sides:
        for name, model, prior in rows:
            r = bench_generator(model, prior, batch, side, steps, timed, peak)
            if "error" in r:
                print(f"{side:<9}{name:<30} failed: {r['error']}")
                continue
            print(
                f"{side:<9}{name:<30}{r['compile_s']:>10.2f}{r['step_s']:>10.3f}"
                f"{mib(r['peak_bytes']):>12}"
            )
