"""Import official PyTorch weights: ``python -m jaxsr.convert --src=X.pth --out=DIR``.

Reads the file without torch (see ``torch_pickle``), unwraps BasicSR/MIRNet style
containers (``params_ema`` > ``params`` > ``state_dict``), strips ``module.``, detects
the architecture and its size from the keys and shapes, and writes a jaxsr model
directory that ``jaxsr.load_model``, ``evaluate``, ``upscale`` and ``init_from`` accept.

Recognised: RRDBNet / ESRGAN (all three key schemes, ×1/×2/×4 from shapes), DASR
(``model_600.pt``: encoder + SR network, ×2/×3/×4 from shapes), MIRNet (the released
denoising / SR / enhancement checkpoints, shared weights checked), SFTGAN (the ×4
OST generator), pix2pixHD (G global
or local, D with either key scheme, E; sizes from keys and shapes) and the torchvision
VGG19 feature extractor (written as an ``.npz`` of Flax params).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from jaxsr import files
from jaxsr.convert.check import check_variables
from jaxsr.convert.common import unwrap
from jaxsr.convert.dasr import dasr_config, dasr_variables, is_dasr
from jaxsr.convert.mirnet import is_mirnet, mirnet_config, mirnet_params
from jaxsr.convert.pix2pixhd import architecture as pix2pixhd_architecture
from jaxsr.convert.rrdbnet import is_rrdbnet, rrdbnet_config, rrdbnet_params
from jaxsr.convert.sftgan import architecture as sftgan_architecture
from jaxsr.convert.torch_pickle import flat_state_dict, load_torch
from jaxsr.convert.vgg import vgg19_params_from_torch
from jaxsr.errors import UserError, cli
from jaxsr.saved_model import check_output, save_model


def _architecture(sd: dict):
    """``(model name, kwargs, variables, origins, description, example inputs)`` of a
    recognised layout (inputs ``None``: one RGB image)."""
    origins: dict = {}
    if is_rrdbnet(sd):
        cfg = rrdbnet_config(sd)
        size = f"nf={cfg['num_feat']}, nb={cfg['num_block']}, gc={cfg['num_grow_ch']}"
        variables = {"params": rrdbnet_params(sd, origins)}
        return "rrdbnet", cfg, variables, origins, f"RRDBNet ×{cfg['scale']} ({size})", None
    if is_dasr(sd):
        cfg = dasr_config(sd)
        size = f"{cfg['n_groups']} groups × {cfg['n_blocks']} blocks, {cfg['n_feats']} features"
        desc = f"DASR ×{cfg['scale']} ({size}) with its degradation encoder"
        return "dasr", cfg, dasr_variables(sd, origins), origins, desc, None
    if is_mirnet(sd):
        cfg = mirnet_config(sd)
        desc = f"MIRNet ({cfg['n_rrg']} RRGs × {cfg['n_mrb']} MRBs, {cfg['n_feat']} features)"
        return "mirnet", cfg, {"params": mirnet_params(sd, origins)}, origins, desc, None
    return sftgan_architecture(sd) or pix2pixhd_architecture(sd)


def check_finite(src: str, sd: dict) -> None:
    """Refuse weights holding NaN or infinity (a diverged run or a damaged file): the
    converted model would only ever output NaN."""
    bad = {}
    for key, v in sd.items():
        if v.dtype.kind not in "biu":  # float16/32/64 and bfloat16
            n = int(np.size(v) - np.count_nonzero(np.isfinite(v)))
            if n:
                bad[key] = n
    if bad:
        shown = ", ".join(f"{k} ({n} of {sd[k].size})" for k, n in list(bad.items())[:3])
        more = f" and {len(bad) - 3} more tensors" if len(bad) > 3 else ""
        raise UserError(
            f"{src}: NaN or infinite values in {shown}{more}; the checkpoint is damaged or "
            "from a diverged run, so nothing was converted."
        )


def convert(src: str, out: str, *, overwrite: bool = False) -> str:
    """Convert ``src`` into ``out``; returns a one-line description of what was written.

    ``out`` is a model directory; an existing one is replaced only with ``overwrite``,
    and a folder that holds anything else is never touched.
    """
    obj = load_torch(src)
    if not isinstance(obj, dict):
        raise UserError(f"{src}: expected a state dict (a mapping), found {type(obj).__name__}.")
    sd = flat_state_dict(unwrap(obj))
    check_finite(src, sd)
    try:
        found = _architecture(sd)
    except (KeyError, IndexError, ValueError) as e:  # a recognised layout with odd tensors
        raise UserError(
            f"{src}: the tensors do not fit the layout their names suggest ({e}); "
            "is the file complete and from the official code?"
        ) from e
    if found is not None:
        name, cfg, variables, origins, description, inputs = found
        check_variables(src, name, cfg, variables, origins, inputs)
        save_model(
            out,
            name,
            cfg,
            variables,
            overwrite=overwrite,
            inputs=(src,),
            source=files.absolute(src),
        )
        return description
    if any(k.startswith("features.") for k in sd):
        params = vgg19_params_from_torch(sd)
        if "conv1_1" in params:
            path = out if out.endswith(".npz") else out + ".npz"
            check_output(path, (src,), overwrite=overwrite, kind="file")
            with files.atomic_path(path, ".npz") as tmp, open(tmp, "wb") as f:
                flat = {f"{k}/{leaf}": v for k, p in params.items() for leaf, v in p.items()}
                np.savez(f, **flat)
            return f"VGG19 features ({len(params)} convs) -> {path} (use as --config.vgg_weights)"
    shown = ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in list(sd.items())[:12])
    raise UserError(
        f"{src}: unrecognised layout with {len(sd)} tensors (first: {shown}); supported: "
        "ESRGAN/BasicSR RRDBNet, DASR, MIRNet, pix2pixHD G/D/E and torchvision VGG19."
    )


@cli
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxsr.convert", description=__doc__.split("\n")[0])
    p.add_argument("--src", required=True, help="official .pth/.pt checkpoint")
    p.add_argument("--out", required=True, help="output model directory (new or empty)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace --out if it holds a jaxsr model"
    )
    args = p.parse_args(argv)
    print(f"Wrote {args.out}: {convert(args.src, args.out, overwrite=args.overwrite)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
