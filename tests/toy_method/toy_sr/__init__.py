"""A toy SR method outside jaxsr: its own model, task, recipe and converter, and the one
registration below; ``JAXSR_METHODS=toy_sr`` makes every jaxsr CLI know it
(tests/test_methods.py)."""

import os

from jaxsr.methods import Method, register

register(
    Method(
        name="Toy",
        tasks={"toy": "toy_sr.task:ToyTask"},
        models={"toy_net": "toy_sr.model:ToyNet"},
        recipes={"toy": os.path.join(os.path.dirname(__file__), "recipe.py")},
        converter="toy_sr.convert:architecture",
        weights="toy nets",
    )
)
