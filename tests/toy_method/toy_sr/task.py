"""The toy's task: supervised SR with L1, jaxsr's own step (nothing to write)."""

from jaxsr.tasks.sr import SupervisedSR


class ToyTask(SupervisedSR):
    losses = ("l1",)
