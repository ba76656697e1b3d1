"""The training loop's console line: step, stage, loss, speed and an ETA that knows the
stages.

A task with stages (DASR's encoder-only stage, pix2pixHD's fixed-global epochs) runs
them at different speeds — DASR's first stage is about 8× faster than its second — so
one rate times the remaining steps is wrong by minutes. The ETA here is per stage: the
current stage's remaining steps at the current stage's rate, and each later stage
named with its step count until it has been timed (its speed is unknown until its
step function is compiled and run).
"""

from __future__ import annotations

import time


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Progress:
    """Times the steps of each stage (``[(first step, ...)]`` as ``Task.phases()``) and
    formats the console line. ``stage_rate`` excludes each stage's first step, which
    includes its compilation."""

    def __init__(self, stage_starts: list[int], num_steps: int, clock=time.monotonic):
        self.starts, self.num_steps, self.clock = list(stage_starts), num_steps, clock
        self._timed: dict[int, tuple[int, float]] = {}  # stage -> (first timed step, t)
        self._last: dict[int, tuple[int, float]] = {}  # stage -> (newest step, t)

    def stage(self, step: int) -> int:
        """The stage the step ``step`` (1-based count of steps done) belongs to."""
        return max(i for i, first in enumerate(self.starts) if first < max(step, 1))

    def _end(self, stage: int) -> int:
        return self.starts[stage + 1] if stage + 1 < len(self.starts) else self.num_steps

    def update(self, step: int) -> None:
        """Record that ``step`` steps are done (call after the step's results are on
        the host, so that the time is the device's)."""
        stage, now = self.stage(step), self.clock()
        if stage not in self._timed:
            self._timed[stage] = (step, now)  # the stage's first step: its compile time
        self._last[stage] = (step, now)

    def stage_rate(self, stage: int) -> float | None:
        """Steps per second of ``stage`` since its first step, or None before two steps."""
        if stage not in self._timed:
            return None
        (s0, t0), (s1, t1) = self._timed[stage], self._last[stage]
        return (s1 - s0) / (t1 - t0) if s1 > s0 and t1 > t0 else None

    def eta(self, step: int) -> str:
        """``"ETA 3m05s"``, or ``"stage 1 ends in 0m40s, then stage 2: 3600 steps, not
        yet timed"`` while a later stage's speed is unknown."""
        stage = self.stage(step)
        parts, total, untimed = [], 0.0, []
        for s in range(stage, len(self.starts)):
            remaining = self._end(s) - (step if s == stage else self.starts[s])
            rate = self.stage_rate(s)
            if rate is None:
                untimed.append((s, remaining))
            else:
                total += remaining / rate
        if not untimed:
            return f"ETA {_duration(total)}"
        if len(self.starts) > 1 and self.stage_rate(stage) is not None:
            parts.append(f"stage {stage + 1} ends in {_duration(total)}")
        parts += [f"stage {s + 1}: {n} steps to go, not yet timed" for s, n in untimed]
        return "; ".join(parts)

    def line(self, step: int, metrics: dict[str, float]) -> str:
        """``step 400/4000 (stage 1/2) · loss 0.8931 · lr 1e-03 · 250.2 steps/s · ETA …``"""
        stage = self.stage(step)
        head = f"step {step}/{self.num_steps}"
        if len(self.starts) > 1:
            head += f" (stage {stage + 1}/{len(self.starts)})"
        parts = [head]
        if "loss" in metrics:
            parts.append(f"loss {metrics['loss']:.4g}")
        if "lr" in metrics:
            parts.append(f"lr {metrics['lr']:.2g}")
        rate = self.stage_rate(stage)
        if rate is not None:
            parts.append(f"{rate:.3g} steps/s")
        if step < self.num_steps:
            parts.append(self.eta(step))
        return " · ".join(parts)
