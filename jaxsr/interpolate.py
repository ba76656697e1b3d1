"""Network interpolation: ``python -m jaxsr.interpolate --a=DIR --b=DIR --alpha=0.8 --out=DIR``.

ESRGAN Sec. 3.4: ``θ = (1 - α) θ_a + α θ_b`` on every parameter of two networks of
the same architecture (typically the PSNR-oriented and the GAN model), trading
fidelity against perceptual quality without retraining. ``--a``/``--b`` are training
workdirs or model directories; the result is a model directory.
"""

from __future__ import annotations

import argparse
import sys

import jax
import numpy as np

from jaxsr.cli_flags import number
from jaxsr.errors import UserError, cli
from jaxsr.saved_model import check_output, load_model_description, save_model


def interpolate(a, b, alpha: float):
    """``(1 - α) a + α b`` leaf by leaf; different structures or shapes are a UserError."""
    fa, fb = jax.tree_util.tree_flatten_with_path(a)[0], jax.tree_util.tree_flatten_with_path(b)[0]
    pa = {jax.tree_util.keystr(p): np.shape(x) for p, x in fa}
    pb = {jax.tree_util.keystr(p): np.shape(x) for p, x in fb}
    diff = sorted(set(pa) ^ set(pb)) + sorted(k for k in set(pa) & set(pb) if pa[k] != pb[k])
    if diff:
        detail = ", ".join(
            f"{k} ({pa.get(k, 'missing')} vs {pb.get(k, 'missing')})" for k in diff[:8]
        )
        raise UserError(
            f"The two networks differ in {len(diff)} parameter(s): {detail}; interpolation "
            "needs two checkpoints of the same architecture."
        )
    if alpha == 0:
        return a
    if alpha == 1:
        return b
    return jax.tree.map(lambda x, y: (1.0 - alpha) * np.asarray(x) + alpha * np.asarray(y), a, b)


@cli
def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jaxsr.interpolate", description=__doc__.split("\n")[0]
    )
    p.add_argument("--a", required=True, help="model at alpha = 0 (e.g. the PSNR model)")
    p.add_argument("--b", required=True, help="model at alpha = 1 (e.g. the ESRGAN model)")
    p.add_argument(
        "--alpha", type=number(float, 0.0, 1.0), required=True, help="weight of --b, in [0, 1]"
    )
    p.add_argument("--out", required=True, help="output model directory (new or empty)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace --out if it holds a jaxsr model"
    )
    args = p.parse_args(argv)
    check_output(args.out, (args.a, args.b), overwrite=args.overwrite)  # before the slow part
    name_a, kw_a, va = load_model_description(args.a)
    name_b, kw_b, vb = load_model_description(args.b)
    if (name_a, kw_a) != (name_b, kw_b):
        raise UserError(
            f"--a is {name_a} {kw_a} but --b is {name_b} {kw_b}; interpolation needs the "
            "same architecture."
        )
    save_model(
        args.out,
        name_a,
        kw_a,
        interpolate(va, vb, args.alpha),
        overwrite=args.overwrite,
        inputs=(args.a, args.b),
        interpolated={"a": args.a, "b": args.b, "alpha": args.alpha},
    )
    print(f"Wrote {args.out}: (1 - {args.alpha}) * {args.a} + {args.alpha} * {args.b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
