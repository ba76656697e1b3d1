"""DASR's extra benchmark row: the same jitted step fed by a host-side degradation
pipeline (numpy/scipy, one random kernel per image), as a synchronous loader would,
beside the step that synthesises the degradations on the device."""

from __future__ import annotations

import jax
import numpy as np

from jaxsr.bench.harness import timed
from jaxsr.data.degradations import FixedDegradation
from jaxsr.train import sharding


def host_degradation(step, steps: int) -> tuple[str, dict]:
    """``('jaxsr, LR made on host', row)``; the row's time includes the host's."""
    config, host_batch = step.config, step.host_batch
    d = config.degradation
    rng = np.random.default_rng(0)

    def host_degrade():
        lq = []
        for i, pair in enumerate(host_batch["gt"]):
            fixed = FixedDegradation(
                sigma=float(rng.uniform(d.sig_min, d.sig_max)),
                noise=float(rng.uniform(0, d.noise)) if d.noise else 0.0,
                seed=i,
                boundary=d.boundary,
            )
            lq.append(
                np.stack(
                    [fixed.apply(hr, scale=config.scale, index=j) for j, hr in enumerate(pair)]
                )
            )
        return {"gt": host_batch["gt"], "lq": np.stack(lq)}

    host_s = timed(host_degrade, steps)
    batch = sharding.put_batch(host_degrade(), step.mesh)
    compiled = step.step.lower(step.state, batch, step.consts).compile()
    holder = {"state": step.state}

    def run():
        batch = sharding.put_batch(host_degrade(), step.mesh)
        holder["state"], metrics = compiled(holder["state"], batch, step.consts)
        jax.block_until_ready(metrics["loss"])

    row = {"step_s": timed(run, steps), "compile_s": float("nan")}
    note = f"(DASR: the host numpy degradation takes {host_s:.3f} s per batch; its row includes it)"
    return "jaxsr, LR made on host", {**row, "note": note}
