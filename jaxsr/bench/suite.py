"""Benchmark suites: every recipe's train step at its paper size, one table.

``python -m jaxsr.benchmark --suite=paper`` times each recipe of :data:`SUITES` on the
devices present (data-parallel over all of them) in fp32 and bf16, the two largest
recipes also with rematerialisation and with ``scan_blocks``, and searches the largest
batch that fits for ESRGAN; it is sized for a few minutes on one H100 and stops
starting new rows when ``budget_s`` is spent. ``--dry_run`` lists the rows without
building anything (works on any machine); ``--suite=tiny`` runs the same code on the
``tiny`` presets in seconds (the tests do).
"""

from __future__ import annotations

import dataclasses
import os
import time

from jaxsr import methods
from jaxsr.bench import harness
from jaxsr.errors import UserError

# (compute dtype, remat, scan_blocks)
PLAIN = (("float32", False, False), ("bfloat16", False, False))
ALL = (*PLAIN, ("bfloat16", True, False), ("bfloat16", False, True))


@dataclasses.dataclass(frozen=True)
class Row:
    """One recipe of a suite: ``configs/<recipe>.py:<preset>`` in each of ``variants``."""

    title: str
    recipe: str
    preset: str = ""
    variants: tuple = PLAIN
    largest_batch: bool = False

    @property
    def name(self) -> str:
        """What ``--only`` matches: the recipe's name (a recipe file's stem)."""
        return os.path.splitext(os.path.basename(self.recipe))[0]

    def config(self, dtype: str, remat: bool, scan: bool, tiny: bool):
        try:
            import configs  # the recipes, beside the package in the repository
        except ImportError as e:
            raise UserError(
                "The benchmark suites read the recipes in configs/: run from the repository root."
            ) from e
        preset = ",".join(p for p in (self.preset, "tiny" if tiny else "") if p)
        c = configs.load(self.recipe, preset)
        c.dtype, c.remat = dtype, remat
        if scan:
            c.scan_blocks = True
        return c


def paper_rows() -> tuple[Row, ...]:
    """Every registered method's rows (:mod:`jaxsr.methods`: its ``bench['suite']``, or
    one plain row per recipe), so a new method is in the suite without another list."""
    out = []
    for method in methods.all_methods():
        specs = method.bench.get("suite") or tuple(
            (
                method.name if len(method.recipes) == 1 else f"{method.name} {task}",
                recipe,
                "plain",
                False,
            )
            for task, recipe in method.recipes.items()
        )
        for title, target, variants, largest in specs:
            recipe, _, preset = target.partition(":")
            kinds = {"plain": PLAIN, "all": ALL}[variants]
            out.append(Row(title, recipe, preset, kinds, largest))
    return tuple(out)


SUITES = {"paper": paper_rows, "tiny": paper_rows}


def _describe(config) -> str:
    """The step's input size: batch x HR patch (pix2pixHD: x the loaded width)."""
    d = config.data
    if config.task == "pix2pixhd":
        return f"{d.batch_size}x w{d.load_size}"
    return f"{d.batch_size}x{d.patch_size}²"


def _variant(dtype: str, remat: bool, scan: bool) -> str:
    parts = ["bf16" if dtype == "bfloat16" else "fp32"] + ["remat"] * remat + ["scan"] * scan
    return "+".join(parts)


def rows(suite: str, only: str = ""):
    """``[(row, variant, config)]`` of a suite, filtered by recipe names in ``only``."""
    wanted = {r.strip() for r in only.split(",") if r.strip()}
    table = SUITES[suite]()
    unknown = sorted(wanted - {row.name for row in table})
    if unknown:
        known = ", ".join(dict.fromkeys(row.name for row in table))
        raise UserError(
            f"--only={only}: no recipe {', '.join(unknown)} in the suite; known: {known}."
        )
    out = []
    for row in table:
        if wanted and row.name not in wanted:
            continue
        for dtype, remat, scan in row.variants:
            out.append((row, (dtype, remat, scan), row.config(dtype, remat, scan, suite == "tiny")))
    return out


def dry_run(suite: str, only: str = "") -> str:
    lines = [f"Suite {suite!r}: the train step of each row, data-parallel over all devices:"]
    for row, variant, config in rows(suite, only):
        where = row.recipe if row.recipe.endswith(".py") else f"configs/{row.recipe}.py"
        name = where + (f":{row.preset}" if row.preset else "")
        lines.append(f"  {row.title:<24}{_variant(*variant):<11}{name:<26}{_describe(config)}")
        if row.largest_batch and variant == row.variants[-1]:
            lines.append(f"  {row.title:<24}largest batch that fits (compile only)")
    return "\n".join(lines)


def _fmt(x, spec: str, missing: str = "-") -> str:
    return missing if x is None or x != x else format(x, spec)  # x != x: NaN


def run(suite: str, *, steps: int = 5, only: str = "", budget_s: float = 480.0) -> list[dict]:
    """Time every row (the first variant of each recipe also warm from the compilation
    cache); prints the table and returns its rows."""
    peak = harness.peak_tflops()
    print(f"Machine: {harness.machine()}")
    print(
        f"MFU against {harness.device_kind()}'s peak dense bf16 rate: "
        + (f"{peak:.0f} TFLOP/s per chip" if peak else "unknown kind, no MFU")
    )
    header = (
        f"{'recipe':<24}{'input':<11}{'variant':<11}{'compile s':>10}{'warm s':>8}{'step ms':>9}"
        f"{'img/s':>9}{'TFLOP/s':>9}{'MFU':>7}{'XLA MiB':>9}"
    )
    print(header)
    results, t_start, seen = [], time.perf_counter(), set()
    for row, variant, config in rows(suite, only):
        label = _variant(*variant)
        lead = f"{row.title:<24}{'':<11}{label:<11}"
        if time.perf_counter() - t_start > budget_s:
            print(f"{lead}skipped: the {budget_s:.0f} s budget is spent")
            continue
        try:
            m = harness.TrainStep(config).measure(steps, warm=row.recipe not in seen)
        except Exception as e:  # an OOM or an unsupported option ends the row, not the run
            print(f"{lead}failed: {type(e).__name__}: {str(e)[:120]}")
            continue
        seen.add(row.recipe)
        m.pop("compiled")
        mib = None if m["program_bytes"] is None else m["program_bytes"] / 2**20
        warm = _fmt(m["warm_compile_s"], ".1f")
        print(
            f"{row.title:<24}{_describe(config):<11}{label:<11}{m['compile_s']:>10.1f}{warm:>8}"
            f"{m['step_s'] * 1e3:>9.1f}{m['images_s']:>9.1f}{m['tflops_s']:>9.2f}"
            f"{_fmt(m['mfu'], '.1%'):>7}{_fmt(mib, '.0f'):>9}"
        )
        results.append({"title": row.title, "variant": label, **m})
        if row.largest_batch and variant == row.variants[-1]:
            fits = harness.largest_batch(config)
            print(f"{lead}largest batch that fits: {fits}")
            results[-1]["largest_batch"] = fits
    return results
