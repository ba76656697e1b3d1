"""Export a model for use outside JAX: ``python -m jaxsr.export --model=DIR
--format=onnx|stablehlo --out=PATH``.

``--model`` is any jaxsr model directory or training workdir (local or gs://). ONNX:
input ``input`` (float32 NCHW RGB in [0, 1]), output ``output`` (NCHW in [0, 1]), as
Real-ESRGAN's export; pix2pixHD takes ``label`` and ``instance`` id maps ``(N, H, W)``
int32, SFTGAN/SPSAGAN ``input`` and ``prior``. StableHLO: a serialized ``jax.export``
(NHWC, as jaxsr's models) for ``jax.export.deserialize``. Height, width and (unless
``--batch=N``) batch stay dynamic, in the multiples the network needs. Every file is run
by its runtime at two sizes and compared with jaxsr before it is kept
(:mod:`jaxsr.deploy.export`); ``--dtype=float16`` computes in half precision.
"""

from __future__ import annotations

import argparse
import sys

from jaxsr.deploy.export import export_model
from jaxsr.deploy.formats import DTYPES, FORMATS
from jaxsr.errors import UserError, cli


def _batch(text: str) -> int | None:
    if text == "dynamic":
        return None
    try:
        batch = int(text)
    except ValueError:
        batch = 0
    if batch < 1:
        raise UserError(f"--batch={text!r}: give a number >= 1 or 'dynamic'.")
    return batch


@cli
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxsr.export", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="model directory or training workdir")
    p.add_argument("--format", required=True, choices=FORMATS, help="file format")
    p.add_argument("--out", required=True, help="output file (.onnx, .stablehlo)")
    p.add_argument("--dtype", default="float32", choices=DTYPES, help="compute precision")
    p.add_argument("--batch", default="dynamic", help="a fixed batch size, or 'dynamic'")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    args = p.parse_args(argv)
    report = export_model(
        args.model,
        args.format,
        args.out,
        dtype=args.dtype,
        batch=_batch(args.batch),
        overwrite=args.overwrite,
    )
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
