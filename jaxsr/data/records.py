"""Image datasets as ArrayRecord shards: written once, read by grain with random access.

A prepared dataset is a folder::

    index.json                      names, sizes, shards, the files left out
    images-00000-of-00004.array_record
    ...

Each record is one example: ``{'name', 'gt', 'shape'}`` (plus ``'lq'`` for paired LR
data), msgpack-encoded; ``gt`` is the image file's own bytes when Pillow decodes them
to exactly the 8-bit RGB pixels training uses (JPEG, PNG, gray, palette, RGBA), else
a PNG of those pixels (e.g. 16-bit images, which jaxsr rounds and Pillow truncates),
or raw uint8 pixels with ``encoding='raw'``. Everything was decoded once when the
dataset was prepared, so a damaged file never reaches training; the records are fixed
in order, so the data order of a run (and its exact resume) does not depend on
listing a folder, which on object stores and network filesystems is neither fast nor
ordered. ``group_size:1`` keeps every record individually addressable: one read per
example, whatever the shuffle.

:func:`write_dataset` makes the folder (``python -m jaxsr.data.prepare``);
:class:`RecordSource` is the source ``kind='arrayrecord'`` reads.
"""

from __future__ import annotations

import io
import json
import os

import numpy as np
from absl import logging
from flax import serialization
from PIL import Image

from jaxsr import files
from jaxsr.data.images import ImageError, read_image
from jaxsr.errors import UserError

INDEX = "index.json"
ENCODINGS = ("auto", "png", "raw")
FORMAT = "jaxsr-arrayrecord-v1"
_WRITER_OPTIONS = "group_size:1"


def _encode(pixels: np.ndarray, encoding: str, path: str | None = None):
    """The stored form of ``pixels``: the file's own bytes (``auto``, when they decode
    to exactly these pixels: 8-bit RGB JPEG/PNG/...; JPEG stays small and fast to
    decode), else a PNG of the pixels, or the raw array (``raw``)."""
    if encoding == "raw":
        return pixels
    if encoding == "auto" and path is not None:
        data = files.read_bytes(path)
        try:
            if np.array_equal(_decode(data, pixels.shape), pixels):
                return data
        except Exception:  # any decoding difference: store a PNG instead
            pass
    buf = io.BytesIO()
    # Fast zlib level: prepared once, decoded many times; level barely changes decoding.
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _decode(stored, shape) -> np.ndarray:
    if isinstance(stored, np.ndarray):
        return stored
    with Image.open(io.BytesIO(stored)) as im:
        px = np.asarray(im.convert("RGB"))
    if px.shape[:2] != tuple(shape[:2]):
        raise ImageError(f"a record decoded to {px.shape}, not its recorded {tuple(shape)}.")
    return px


def encode_example(
    name: str, gt: np.ndarray, lq: np.ndarray | None, encoding: str, paths=(None, None)
) -> bytes:
    record = {"name": name, "gt": _encode(gt, encoding, paths[0]), "shape": list(gt.shape)}
    if lq is not None:
        record["lq"], record["lq_shape"] = _encode(lq, encoding, paths[1]), list(lq.shape)
    return serialization.msgpack_serialize(record)


def decode_example(data: bytes) -> dict:
    record = serialization.msgpack_restore(data)
    out = {"gt": _decode(record["gt"], record["shape"])}
    if "lq" in record:
        out["lq"] = _decode(record["lq"], record["lq_shape"])
    return out


def write_dataset(
    pairs,
    out: str,
    *,
    shards: int = 0,
    encoding: str = "auto",
    source: str = "",
    progress=None,
) -> dict:
    """Decode each ``(name, hr path, lr path or None)`` and write the readable ones to
    ArrayRecord shards in ``out``; returns the index written beside them.

    A file that cannot be decoded is reported (warning, and in the index's
    ``skipped``) and left out. ``shards=0`` picks about 1 GB of input per shard. The
    folder appears complete or not at all (``files.atomic_dir``: locally a rename; on an
    object store the shards are uploaded first and ``index.json`` last, so a dataset
    without its index is never read).
    """
    from array_record.python.array_record_module import ArrayRecordWriter

    if encoding not in ENCODINGS:
        raise UserError(f"encoding={encoding!r}: choose one of {', '.join(ENCODINGS)}.")
    if files.exists(out):
        raise UserError(f"{out} exists; remove it or choose another --out.")
    pairs, skipped = list(pairs), []
    if not pairs:
        raise UserError("No images to prepare; check --src.")
    readable = []
    for name, hr, lr in pairs:  # a FIFO, link loop or dangling link is no image
        problem = next(
            (f"{p}: {why}." for p in (hr, lr) if p and (why := files.file_problem(p))), None
        )
        if problem:
            logging.warning("Skipping %s", problem)
            skipped.append([name, problem])
        else:
            readable.append((name, hr, lr))
    pairs = readable
    if not pairs:
        raise UserError(f"None of the {len(skipped)} images can be read; nothing written.")
    if shards <= 0:
        size = sum(files.size(h) for _, h, _ in pairs)
        shards = max(1, min(len(pairs), round(size / 1e9)))
    files.makedirs(os.path.dirname(files.absolute(out)))
    with files.atomic_dir(out, marker=INDEX) as tmp:
        names = [f"images-{i:05d}-of-{shards:05d}.array_record" for i in range(shards)]
        writers = [ArrayRecordWriter(os.path.join(tmp, n), _WRITER_OPTIONS) for n in names]
        per_shard = -(-len(pairs) // shards)  # consecutive runs: shard k holds records k*n..
        records = []
        for name, hr, lr in progress(pairs) if progress else pairs:
            try:
                gt = read_image(hr).rgb_uint8()
                lq = None if lr is None else read_image(lr).rgb_uint8()
            except ImageError as e:
                logging.warning("Skipping unreadable image: %s", e)
                skipped.append([name, str(e)])
                continue
            record = encode_example(name, gt, lq, encoding, (hr, lr))
            writers[len(records) // per_shard].write(record)
            records.append({"name": name, "height": gt.shape[0], "width": gt.shape[1]})
        for w in writers:
            w.close()
        if not records:
            raise UserError(f"None of the {len(pairs)} images could be decoded; nothing written.")
        used = sorted({i // per_shard for i in range(len(records))})
        for i, n in enumerate(names):  # fewer readable images than planned: drop empties
            if i not in used:
                os.remove(os.path.join(tmp, n))  # our own temporary folder
        index = {
            "format": FORMAT,
            "source": source,
            "encoding": encoding,
            "paired": any(lr is not None for _, _, lr in pairs),
            "shards": [names[i] for i in used],
            "records": records,
            "skipped": skipped,
        }
        with open(os.path.join(tmp, INDEX), "w") as f:  # our own temporary folder
            json.dump(index, f, indent=2)
    return index


def read_index(folder: str) -> dict:
    path = os.path.join(folder, INDEX)
    if not files.exists(path):
        raise UserError(
            f"{folder} is not a prepared dataset (no {INDEX}); make one with "
            f"`python -m jaxsr.data.prepare --src=IMAGES --out={folder}`."
        )
    index = files.read_json(path, "dataset index")
    if index.get("format") != FORMAT:
        raise UserError(f"{path} is not a {FORMAT} index; prepare the dataset again.")
    return index


class RecordSource:
    """A prepared dataset as a random-access source of ``{'gt'[, 'lq']}`` examples.

    Records smaller than ``min_size`` (the training patch) are left out and named in
    ``skipped``, with the files that prepare left out.
    """

    def __init__(self, folder: str, *, min_size: int = 0):
        import grain

        index = read_index(folder)
        paths = [os.path.join(folder, s) for s in index["shards"]]
        missing = [p for p in paths if not files.isfile(p)]
        if missing:
            raise UserError(f"{missing[0]} is missing; the prepared dataset is incomplete.")
        self._records = grain.sources.ArrayRecordDataSource(paths)
        if len(self._records) != len(index["records"]):
            raise UserError(
                f"{folder} holds {len(self._records)} records but its index lists "
                f"{len(index['records'])}; prepare the dataset again."
            )
        self.skipped = [tuple(s) for s in index["skipped"]]
        self._keep = []
        for i, r in enumerate(index["records"]):
            if min(r["height"], r["width"]) >= min_size:
                self._keep.append(i)
            else:
                reason = f"{r['height']}x{r['width']} is smaller than the {min_size}-pixel minimum"
                self.skipped.append((r["name"], reason))
        self.names = [index["records"][i]["name"] for i in self._keep]

    def __len__(self) -> int:
        return len(self._keep)

    def load(self, index: int) -> dict:
        return self[index]

    def __getitem__(self, index: int) -> dict:
        return decode_example(self._records[self._keep[index]])
