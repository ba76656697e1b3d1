"""Read ``.safetensors`` weight files (the format BasicSR, chaiNNer and the Hugging Face
hub now publish) with the ``safetensors`` package's numpy side.

A ``.safetensors`` file is an 8-byte little-endian header length, a JSON header of
``{name: {dtype, shape, data_offsets}}`` and the raw tensors; nothing in it is code.
The package checks that every tensor lies inside the file and that its offsets match
its shape; anything it refuses is one sentence naming the file. NaN and infinite
weights are refused by the converter (:func:`jaxsr.convert.official.check_finite`), as
for ``.pth`` files.
"""

from __future__ import annotations

import numpy as np

from jaxsr import files
from jaxsr.errors import UserError


def read_safetensors(src: str) -> dict[str, np.ndarray]:
    """``{name: array}`` of a ``.safetensors`` file; bfloat16 tensors come as float32."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    problem = files.file_problem(src)
    if problem:
        raise UserError(f"{src}: {problem}.")
    data = files.read_bytes(src)
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, TypeError, OverflowError) as e:
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise UserError(
            f"{src}: not a readable .safetensors file ({reason}); is it whole, and a "
            ".safetensors file?"
        ) from e
    if not tensors:
        raise UserError(f"{src}: the .safetensors file holds no tensors.")
    return {k: np.asarray(v) for k, v in tensors.items()}
