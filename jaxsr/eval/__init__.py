"""Evaluation as a library: the papers' protocol, tables and the task-facing
:class:`Evaluator`, shared by the training loop and ``python -m jaxsr.evaluate``."""

from jaxsr.eval.evaluator import Evaluator
from jaxsr.eval.scoring import bicubic_upscale, evaluate_examples, make_lr, score
from jaxsr.eval.tables import format_blind_table, format_table

__all__ = [
    "Evaluator",
    "bicubic_upscale",
    "evaluate_examples",
    "format_blind_table",
    "format_table",
    "make_lr",
    "score",
]
