"""Console tables of evaluation results (one row per dataset, or paper Tables 2/3)."""

from __future__ import annotations


def format_table(results: dict[str, dict], title: str, baseline: str = "bicubic") -> str:
    """A console table: one row per dataset, PSNR/SSIM of model and baseline, and
    their NIQE when scored."""
    niqe = next((k for r in results.values() for k in r["bicubic"] if k.startswith("niqe_")), "")
    head = f"{baseline} PSNR/SSIM"
    # the column names the definition (niqe_matlab / niqe_basicsr): they differ by 0.3
    extra = f"{'model ' + niqe:>20}{baseline + ' ' + niqe:>24}" if niqe else ""
    lines = [title, f"{'dataset':<24}{'model PSNR/SSIM':>20}{head:>22}{extra}"]
    for name, r in results.items():
        m = r.get("model")
        model = f"{m['psnr']:.2f} / {m['ssim']:.4f}" if m else "-"
        b = r["bicubic"]
        row = f"{name:<24}{model:>20}{b['psnr']:>13.2f} / {b['ssim']:.4f}"
        if niqe:
            row += (f"{m[niqe]:>20.3f}" if m else f"{'-':>20}") + f"{b[niqe]:>24.3f}"
        lines.append(row)
    return "\n".join(lines + skipped_lines(results))


def skipped_lines(results: dict[str, dict]) -> list[str]:
    """One line per dataset naming the images left out of its means."""
    lines = []
    for dataset, r in results.items():
        if r.get("skipped"):
            names = ", ".join(s["image"] for s in r["skipped"])
            lines.append(f"{dataset}: not scored (unreadable or too small): {names}")
    return lines


def format_blind_table(results: dict[str, dict[str, dict]], title: str) -> str:
    """Paper Table 2/3 layout: rows = degradation, columns = datasets, cells "model / bicubic"
    PSNR. ``results`` is ``{dataset: {degradation label: evaluate_examples result}}``."""
    datasets = list(results)
    labels = list(results[datasets[0]]) if datasets else []
    width = max([24] + [len(label) + 2 for label in labels])
    lines = [
        title,
        f"{'degradation':<{width}}" + "".join(f"{d[:20]:>22}" for d in datasets),
    ]
    for label in labels:
        cells = []
        for d in datasets:
            r = results[d][label]
            m = f"{r['model']['psnr']:.2f}" if "model" in r else "-"
            cells.append(f"{m + ' / ' + format(r['bicubic']['psnr'], '.2f'):>22}")
        lines.append(f"{label:<{width}}" + "".join(cells))
    firsts = {d: next(iter(per_label.values())) for d, per_label in results.items() if per_label}
    return "\n".join(lines + skipped_lines(firsts))
