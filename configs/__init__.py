"""jaxsr's recipes, one module per method: ``get_config(preset)`` returns an
ml_collections ConfigDict (the paper's recipe by default; ``demo`` runs in minutes on
a laptop CPU, ``tiny`` in seconds for tests).

From the command line: ``python -m jaxsr.main --config=configs/<recipe>.py[:preset]``.
From Python (repository root on the path, as in the tests and notebooks)::

    import configs
    config = configs.load("dasr", "demo")

The fields every recipe shares are built by :mod:`jaxsr.recipes`.
"""

from __future__ import annotations

import importlib
import importlib.util

from jaxsr import methods

# One per task of every registered method (jaxsr.methods), in registration order.
RECIPES = tuple(dict.fromkeys(methods.recipes().values()))


def load(recipe: str, preset: str = ""):
    """``configs.<recipe>.get_config(preset)`` (``recipe:fixed`` puts the presets
    ``fixed`` before ``preset``), or the ``get_config`` of a recipe file
    (``path/to/recipe.py``, a method registered from outside jaxsr); an unknown recipe
    lists the valid ones."""
    if recipe.endswith(".py"):
        spec = importlib.util.spec_from_file_location("jaxsr_recipe", recipe)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.get_config(preset)
    # A registry entry may fix presets of its recipe: 'realesrgan:net' is the recipe
    # 'realesrgan' with its 'net' preset (the first stage's task), before ``preset``.
    name, _, fixed = recipe.partition(":")
    if name not in {r.partition(":")[0] for r in RECIPES}:
        raise ValueError(f"Unknown recipe {recipe!r}; choose one of {list(RECIPES)}.")
    preset = ",".join(p for p in (fixed, preset) if p)
    return importlib.import_module(f"configs.{name}").get_config(preset)
