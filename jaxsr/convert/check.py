"""Check converted weights against the architecture they were detected as.

A checkpoint is recognised by a few key names and sized from a few shapes; every
other tensor must then fit. The expected shapes come from ``jax.eval_shape`` of the
model's ``init`` (no memory, no compute), so a wrong-shaped or missing tensor stops
the conversion with the checkpoint key, the expected and the found shape, instead of
failing later inside Flax.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.errors import UserError
from jaxsr.models import build_model
from jaxsr.trees import flatten_paths


def _flat(tree: dict) -> dict[tuple, tuple]:
    return {path: tuple(np.shape(v)) for path, v in flatten_paths(tree).items()}


def check_variables(
    src: str, name: str, kwargs: dict, variables: dict, origins: dict, inputs=None
) -> None:
    """Raise :class:`UserError` unless ``variables`` has exactly the shapes of
    ``MODELS[name](**kwargs)``; ``origins`` maps variable paths to checkpoint keys.
    ``inputs``: example arguments of the model (default one 32×32 RGB image)."""
    module = build_model(name, **kwargs)
    if inputs is None:
        inputs = (jnp.zeros((1, 32, 32, 3), jnp.float32),)
    expected = _flat(jax.eval_shape(module.init, jax.random.key(0), *inputs))
    found = _flat(variables)
    where = lambda path: origins.get(path, "/".join(path))  # noqa: E731
    problems = [
        f"{where(p)} has shape {found[p]}, expected {expected[p]} ({'/'.join(p)})"
        for p in expected
        if p in found and found[p] != expected[p]
    ]
    problems += [f"{'/'.join(p)} is missing" for p in expected if p not in found]
    problems += [f"{where(p)} has no place in the model" for p in found if p not in expected]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise UserError(
            f"{src}: looks like {name} {kwargs} but {len(problems)} tensor(s) do not fit: "
            f"{'; '.join(problems[:3])}{more}. Is the file complete and from the official code?"
        )
