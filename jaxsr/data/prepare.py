"""Prepare an image folder as ArrayRecord shards, once, for training at scale.

    python -m jaxsr.data.prepare --src=data/DF2K/HR --out=data/DF2K_records
    python -m jaxsr.data.prepare --src=data/DIV2K/HR --lr_src=data/DIV2K/LR_x4 --out=...

then train with ``--config.data.train.kind=arrayrecord --config.data.train.hr_dir=OUT``.
Every image is decoded once here (grayscale, RGBA and 16-bit become 8-bit RGB, as the
folder loader makes them); a file that cannot be decoded is reported and left out.
LR partners (``--lr_src``) are matched by file stem, DIV2K's ``0001x4.png`` included.
See :mod:`jaxsr.data.records` for the format.
"""

from __future__ import annotations

import argparse
import os
import sys

from jaxsr import files
from jaxsr.cli_flags import number, progress_bar
from jaxsr.data.images import ImageError, list_images
from jaxsr.data.records import ENCODINGS, write_dataset
from jaxsr.data.sources import lr_partners
from jaxsr.errors import UserError, cli


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m jaxsr.data.prepare", description=__doc__.split("\n")[0]
    )
    p.add_argument("--src", required=True, help="folder of (HR) images")
    p.add_argument("--lr_src", default="", help="folder of matching LR images (paired data)")
    p.add_argument("--out", required=True, help="new folder for the shards and index.json")
    p.add_argument(
        "--shards", type=number(int, 0), default=0, help="number of shards (0: ~1 GB each)"
    )
    p.add_argument(
        "--encoding",
        choices=ENCODINGS,
        default="auto",
        help="auto: each file's own bytes where they decode to the training pixels, else "
        "PNG; png: always PNG; raw: uint8 pixels, no decoding at training time",
    )
    p.add_argument("--max_images", type=number(int, 0), default=0, help="only the first N (0: all)")
    return p


@cli
def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        hr = list_images(args.src)
    except ImageError as e:
        raise UserError(f"Source folder not found: {e} Check --src.") from e
    if args.max_images:
        hr = hr[: args.max_images]
    if args.lr_src:
        lr, unpaired = lr_partners(hr, args.lr_src)
        for name in unpaired:
            print(f"skipped {name}: no LR partner in {args.lr_src}", file=sys.stderr)
        pairs = [(os.path.basename(h), h, p) for h, p in zip(hr, lr, strict=True) if p]
    else:
        pairs = [(os.path.basename(h), h, None) for h in hr]
    index = write_dataset(
        pairs,
        args.out,
        shards=args.shards,
        encoding=args.encoding,
        source=files.absolute(args.src),
        progress=lambda items: progress_bar(items, desc="prepare", unit="image"),
    )
    for name, reason in index["skipped"]:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(
        f"Wrote {len(index['records'])} images in {len(index['shards'])} shard(s) to "
        f"{args.out} ({len(index['skipped'])} skipped). Train with "
        f"--config.data.train.kind=arrayrecord --config.data.train.hr_dir={args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
