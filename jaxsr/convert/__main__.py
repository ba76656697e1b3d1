"""Import official PyTorch weights: ``python -m jaxsr.convert --src=X.pth --out=DIR``.

The library behind it is :mod:`jaxsr.convert.official`: the architectures come from
the registered methods' converters (:mod:`jaxsr.methods`), so a new method's checkpoints
are recognised here without a change to this file. Recognised today: RRDBNet / ESRGAN
(all three key schemes, ×1/×2/×4 from shapes), DASR (``model_600.pt``), MIRNet (the
released denoising / SR / enhancement checkpoints), SFTGAN (the ×4 OST generator),
pix2pixHD (G global or local, D with either key scheme, E) and torchvision's VGG19
feature extractor (written as an ``.npz`` of Flax params).
"""

from __future__ import annotations

import argparse
import sys

from jaxsr.convert.official import convert
from jaxsr.errors import cli


@cli
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxsr.convert", description=__doc__.split("\n")[0])
    p.add_argument("--src", required=True, help="official .pth/.pt checkpoint")
    p.add_argument("--out", required=True, help="output model directory (new or empty)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace --out if it holds a jaxsr model"
    )
    args = p.parse_args(argv)
    print(f"Wrote {args.out}: {convert(args.src, args.out, overwrite=args.overwrite)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
