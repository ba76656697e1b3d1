"""Evaluation protocols: how the input of each evaluation image is made from its HR
image when it is not the plain MATLAB bicubic ×1/scale (paper Tables 2/3 kernels,
seeded denoising noise, MIRNet's down/up SR input), and the ``--data`` entries of
``python -m jaxsr.evaluate``. Each protocol has a ``label`` (table rows), an ASCII
``tag`` (metric names) and ``apply(hr_uint8, scale=, index=)``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxsr import files
from jaxsr.data.degradations import PAPER_ANISO_KERNELS, add_noise, ascii_tag, eval_degradations
from jaxsr.errors import UserError
from jaxsr.ops.imresize import imresize, imresize_uint8


@dataclasses.dataclass(frozen=True)
class NoiseDegradation:
    """Fixed evaluation noise (σ on the 0–255 scale, optional Poisson peak), seeded."""

    sigma: float
    poisson_peak: float = 0.0
    seed: int = 0

    @property
    def label(self) -> str:
        return f"noise σ={self.sigma:g}" + (
            f" peak={self.poisson_peak:g}" if self.poisson_peak else ""
        )

    @property
    def tag(self) -> str:
        return ascii_tag(self.label)

    def apply(self, hr_uint8: np.ndarray, *, scale: int, index: int = 0) -> np.ndarray:
        rng = jax.random.fold_in(jax.random.key(self.seed), index)
        noisy = add_noise(rng, jnp.asarray(hr_uint8, jnp.float32), self.sigma, self.poisson_peak)
        return np.asarray(noisy).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class UpsampledLR:
    """MIRNet's SR input: MATLAB bicubic ×1/s, then bicubic back to the HR size (uint8)."""

    sr_scale: int

    @property
    def label(self) -> str:
        return f"bicubic ×{self.sr_scale} down/up"

    @property
    def tag(self) -> str:
        return f"bicubic_x{self.sr_scale}"

    def apply(self, hr_uint8: np.ndarray, *, scale: int, index: int = 0) -> np.ndarray:
        h, w = hr_uint8.shape[:2]
        s = self.sr_scale
        lr = imresize_uint8(hr_uint8[: h - h % s, : w - w % s], 1 / s)
        # Back to the full HR size, so no pixel of the input is left undegraded.
        up = imresize(lr.astype(np.float64), size=(h, w))
        return np.clip(np.floor(up + 0.5), 0, 255).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class RealWorldDegradation:
    """Real-ESRGAN's second-order degradations (:func:`jaxsr.data.realworld.degrade`)
    of each evaluation image, seeded by the image's index: a fixed, reproducible test
    set of JPEG-damaged, noisy, blurred LR images. ``config`` the recipe's
    ``degradation`` block (``None``: the official values)."""

    seed: int = 0
    config: object = None

    @property
    def label(self) -> str:
        return f"real-world degradations, seed {self.seed}"

    @property
    def tag(self) -> str:
        return f"realworld_s{self.seed}"

    def apply(self, hr_uint8: np.ndarray, *, scale: int, index: int = 0) -> np.ndarray:
        from jaxsr.data import realworld  # the degradations compile on first use only

        config = self.config if self.config is not None else realworld.default_config()
        config = ml_collections.ConfigDict(config.to_dict())
        config.scale = scale
        h, w = hr_uint8.shape[:2]
        hr = jnp.asarray(hr_uint8[None, : h - h % scale, : w - w % scale], jnp.float32) / 255
        rng = jax.random.fold_in(jax.random.key(self.seed), index)
        lq = _jitted_degrade(config.to_json())(rng, hr)[0]
        return np.asarray(jnp.round(lq * 255)).astype(np.uint8)


@functools.lru_cache(maxsize=8)
def _jitted_degrade(config_json: str):
    """One compiled pipeline per degradation config (and image size, by jit's own
    cache): run op by op, the second-order pipeline takes tens of seconds per image."""
    from jaxsr.data import realworld

    config = ml_collections.ConfigDict(json.loads(config_json))
    return jax.jit(lambda rng, hr: realworld.degrade(rng, hr, config)["lq"])


def dataset_config(entry: str):
    """``'builtin'``, an HR folder, or ``HR_FOLDER:LQ_FOLDER`` (paired, e.g. SIDD
    groundtruth:input) -> a data source config block."""
    if entry == "builtin":
        return ml_collections.ConfigDict({"kind": "builtin"})
    parts = re.split(r":(?!//)", entry)  # HR:LQ, where either may be a gs:// URL
    if len(parts) == 2:
        hr, lq = parts
        for folder in (hr, lq):
            if not files.isdir(folder):
                raise UserError(f"--data entry {entry!r}: {folder!r} is not a folder.")
        return ml_collections.ConfigDict({"kind": "folder", "hr_dir": hr, "lr_dir": lq})
    if not files.isdir(entry):
        raise UserError(
            f"--data entry {entry!r} is neither 'builtin' nor an existing folder of HR images."
        )
    return ml_collections.ConfigDict({"kind": "folder", "hr_dir": entry, "lr_dir": ""})


def parse_floats(text: str, flag: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(
            f"{flag}={text!r}: expected comma-separated numbers, e.g. 0,1.2,2.4."
        ) from None


def parse_aniso(text: str) -> tuple[tuple[float, float, float], ...]:
    """Comma-separated ``l1/l2/theta_degrees`` entries; ``table3`` adds the paper's nine."""
    out = []
    for entry in text.split(","):
        if entry == "table3":
            out += PAPER_ANISO_KERNELS
            continue
        try:
            values = tuple(float(v) for v in entry.split("/"))
        except ValueError:
            values = ()
        if len(values) != 3:
            raise UserError(
                f"--aniso entry {entry!r}: expected lambda1/lambda2/theta_degrees "
                "(e.g. 3.5/1.5/30) or 'table3'."
            )
        out.append(values)
    return tuple(out)


def blind_protocols(scale: int, *, sigmas="", aniso="", noise="0", seed=0, boundary="edge") -> list:
    """The fixed blur (+ noise) settings from flag strings (``--sigmas``, ``--aniso``,
    ``--noise``); no kernel flag means paper Table 2's widths."""
    return eval_degradations(
        scale=scale,
        sigmas=parse_floats(sigmas, "--sigmas"),
        aniso=parse_aniso(aniso) if aniso else (),
        noises=parse_floats(noise, "--noise"),
        seed=seed,
        boundary=boundary,
    )
