"""Config values checked in one place, before a run writes anything.

A value that cannot work (an unknown task, model or loss name, a batch of 0 images,
a checkpoint every 0 steps, a data block whose kind ignores the folder the user set)
stops the run with one sentence naming the field, before the workdir, its config or
a checkpoint is touched. Unknown fields and ill-typed overrides are refused earlier,
by ml_collections' locked ConfigDict (``jaxsr.main``).
"""

from __future__ import annotations

from jaxsr import methods
from jaxsr.errors import UserError

# field -> smallest valid value
_MINIMUM = {
    "data.batch_size": 1,
    "data.patch_size": 1,
    "num_train_steps": 0,
    "log_every": 1,
    "checkpoint_every": 1,
    "keep_checkpoints": 1,
    "eval_every": 0,
    "scale": 1,
}


def _get(config, dotted: str):
    node = config
    for part in dotted.split("."):
        if part not in node:
            return None
        node = node[part]
    return node


def check_task_config(config) -> None:
    """The task, its model and its losses against what the registered task declares."""
    task = methods.task_class(config.get("task"))
    methods.model_class(config.model.get("name"))
    method = methods.method_of_task(config.get("task"))
    scale = config.get("scale")
    if method.scales and scale not in method.scales:
        raise UserError(
            f"--config.scale={scale!r}: {method.name} trains ×"
            f"{', ×'.join(str(s) for s in method.scales)}; choose one of them."
        )
    unknown = sorted(set(config.get("losses", {})) - set(task.losses))
    if unknown:
        raise UserError(
            f"Unknown loss(es) {unknown} for task {config.task!r}; choose from {list(task.losses)}."
        )


def validate_config(config) -> None:
    """Raise :class:`UserError` for the first config value that cannot work: the task,
    its model and losses against what the task declares, numbers, then the task's own
    checks (``Task.check_config``: data blocks ...)."""
    check_task_config(config)
    for field, minimum in _MINIMUM.items():
        value = _get(config, field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"--config.{field}={value!r} must be a whole number.")
        if value < minimum:
            raise UserError(f"--config.{field}={value} must be at least {minimum}.")
    methods.task_class(config.task).check_config(config)
