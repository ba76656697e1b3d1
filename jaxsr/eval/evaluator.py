"""An :class:`Evaluator`: a task's evaluation set, protocols, metrics and tables.

A task builds one (``Task.evaluator``); the training loop only calls ``run`` on the
current predictions, writes ``scalars`` and ``images``, and prints ``report`` at the
end, so the metric names (``eval/psnr_y`` or ``eval/psnr_rgb``), the baseline
(bicubic, or the degraded input) and the table layout all come from here.
"""

from __future__ import annotations

import numpy as np

from jaxsr import metrics
from jaxsr.data.pipeline import eval_examples
from jaxsr.eval.scoring import evaluate_examples
from jaxsr.eval.tables import format_blind_table, format_table


class Evaluator:
    """Score ``predict`` on ``examples`` under each protocol.

    Args:
      examples: ``[(name, hr uint8, lq uint8 or None)]`` (``jaxsr.data.eval_examples``).
      dataset: the set's name in tables.
      scale: SR factor (1 for same-size restoration).
      protocols: how the input is made from HR: ``None`` is the standard MATLAB
        bicubic ×1/scale; otherwise an object with ``label``, ``tag`` and
        ``apply(hr, scale=, index=)`` (a fixed blur kernel, seeded noise, ...). One
        table row per protocol.
      y_channel / crop_border: the PSNR/SSIM convention (border ``None`` = scale).
      baseline: the name of the reference column (``bicubic``; ``input`` for
        restoration, where the degraded input itself is the baseline).
      extra: optional ``(sr, hr) -> {name: value}`` metrics (e.g. perceptual distance).
      niqe: also score NIQE (no reference) of the outputs and the baseline, by this
        definition (``'matlab'``, ``'basicsr'``; ``True`` is ``'matlab'``).
      inputs: optional host function from the LR float batch to what ``predict`` takes
        (SFTGAN: ``{'lq', 'seg'}`` with the segmenter's prior), so that ``predict``
        stays one jittable function.
    """

    def __init__(
        self,
        examples,
        *,
        dataset: str,
        scale: int,
        protocols=(None,),
        y_channel: bool = True,
        crop_border: int | None = None,
        baseline: str = "bicubic",
        extra=None,
        niqe: str | bool = "",
        inputs=None,
    ):
        self.examples, self.dataset, self.scale = examples, dataset, scale
        self.inputs = inputs
        self.niqe = metrics.niqe_definition(niqe)
        self.protocols = list(protocols)
        self.y_channel, self.crop_border = y_channel, crop_border
        self.baseline, self.extra = baseline, extra

    @classmethod
    def from_config(cls, config, **kwargs) -> Evaluator:
        """The evaluation set ``config.data.eval`` under the config's PSNR convention
        (``eval_rgb``, ``eval_crop_border``; ``eval_niqe`` adds NIQE)."""
        return cls(
            eval_examples(config.data.eval, scale=config.scale),
            dataset=config.data.eval.get("kind", "eval"),
            scale=config.scale,
            y_channel=not config.get("eval_rgb", False),
            crop_border=config.get("eval_crop_border", None),
            niqe=config.get("eval_niqe", False),
            **kwargs,
        )

    @property
    def channel(self) -> str:
        return "Y" if self.y_channel else "RGB"

    def run(self, predict, keep_outputs: int = 1) -> dict:
        """``{protocol label: evaluate_examples result}``; ``predict`` maps an LR float
        batch ``(1, h, w, 3)`` in [0, 1] (or what ``inputs`` makes of it) to the output
        batch."""
        if self.inputs is not None:
            predict = (lambda fn: lambda lq: fn(self.inputs(lq)))(predict)
        results = {}
        for i, protocol in enumerate(self.protocols):
            label = None if protocol is None else protocol.label
            results[label] = evaluate_examples(
                predict,
                self.examples,
                scale=self.scale,
                keep_outputs=keep_outputs if i == 0 else 0,
                extra=self.extra,
                degradation=protocol,
                y_channel=self.y_channel,
                crop_border=self.crop_border,
                niqe=self.niqe,
            )
        return results

    def scalars(self, results: dict) -> dict[str, float]:
        """``eval/psnr_y``, ``eval/ssim_y``, ``eval/psnr_y_bicubic`` ... (``_rgb`` when
        scored on RGB), suffixed ``/<tag>`` per protocol, plus the extra metrics."""
        ch, base = self.channel.lower(), self.baseline
        scalars = {}
        for protocol, result in zip(self.protocols, results.values(), strict=True):
            suffix = "" if protocol is None else "/" + protocol.tag
            model, ref = result["model"], result["bicubic"]
            scalars[f"eval/psnr_{ch}{suffix}"] = model["psnr"]
            scalars[f"eval/ssim_{ch}{suffix}"] = model["ssim"]
            scalars[f"eval/psnr_{ch}_{base}{suffix}"] = ref["psnr"]
            scalars[f"eval/ssim_{ch}_{base}{suffix}"] = ref["ssim"]
            for k, v in model.items():
                if k not in ("psnr", "ssim"):
                    scalars[f"eval/{k}{suffix}"] = v
            for k, v in ref.items():
                if k.startswith("niqe_"):
                    scalars[f"eval/{k}_{base}{suffix}"] = v
        if len(results) > 1:
            mean = np.mean([r["model"]["psnr"] for r in results.values()])
            scalars[f"eval/psnr_{ch}"] = float(mean)
        return scalars

    def images(self, results: dict) -> dict[str, np.ndarray]:
        """One ``baseline | output | HR`` strip of the first image (for TensorBoard),
        and the diagnostic images ``predict`` returned for it (``eval/<name>``)."""
        first = next(iter(results.values()))
        out = {f"eval/{k}": v for k, v in first.get("images", {}).items()}
        if first["outputs"]:
            base, sr, hr = first["outputs"][0]
            out[f"eval/{self.baseline}_sr_hr"] = np.concatenate([base, sr, hr], 1)[None]
        return out

    def report(self, results: dict, step: int) -> str:
        """The closing table and the gain over the baseline (one line per protocol)."""
        border = self.scale if self.crop_border is None else self.crop_border
        if list(results) == [None]:
            title = (
                f"Final eval at step {step} (×{self.scale}, PSNR/SSIM on {self.channel}, "
                f"border {border})"
            )
            result = results[None]
            gain = result["model"]["psnr"] - result["bicubic"]["psnr"]
            return "\n".join(
                [
                    format_table({self.dataset: result}, title, self.baseline),
                    f"Model vs {self.baseline}: {gain:+.2f} dB PSNR-{self.channel}",
                ]
            )
        # Paper Table 2/3 cells are PSNR only (SSIM is in TensorBoard and eval.json).
        title = (
            f"Final eval at step {step} (×{self.scale}, PSNR on {self.channel}, border {border}; "
            f"model / {self.baseline})"
        )
        table = format_blind_table({self.dataset: results}, title)
        gains = {k: r["model"]["psnr"] - r["bicubic"]["psnr"] for k, r in results.items()}
        line = ", ".join(f"{k}: {g:+.2f} dB" for k, g in gains.items())
        lines = [table, f"Model vs {self.baseline}: {line}"]
        if self.niqe:  # Real-ESRGAN's protocol is judged by NIQE as much as by PSNR
            key = f"niqe_{self.niqe}"
            cells = ", ".join(
                f"{k}: {r['model'][key]:.3f} / {r['bicubic'][key]:.3f}" for k, r in results.items()
            )
            lines.append(f"NIQE ({key}, lower is better; model / {self.baseline}): {cells}")
        return "\n".join(lines)
