"""Import official PyTorch weights: ``python -m jaxsr.convert --src=X.pth --out=DIR``.

Reads the file without torch (see ``torch_pickle``), unwraps BasicSR/MIRNet style
containers (``params_ema`` > ``params`` > ``state_dict``), strips ``module.``, detects
the architecture and its size from the keys and shapes, and writes a jaxsr model
directory that ``jaxsr.load_model``, ``evaluate``, ``upscale`` and ``init_from`` accept.

Recognised: RRDBNet / ESRGAN (all three key schemes, ×1/×2/×4 from shapes), DASR
(``model_600.pt``: encoder + SR network, ×2/×3/×4 from shapes), MIRNet (the released
denoising / SR / enhancement checkpoints, shared weights checked) and the torchvision
VGG19 feature extractor (written as an ``.npz`` of Flax params).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from jaxsr.convert.common import unwrap
from jaxsr.convert.dasr import dasr_config, dasr_variables, is_dasr
from jaxsr.convert.mirnet import is_mirnet, mirnet_config, mirnet_params
from jaxsr.convert.rrdbnet import is_rrdbnet, rrdbnet_config, rrdbnet_params
from jaxsr.convert.torch_pickle import flat_state_dict, load_torch
from jaxsr.errors import UserError, cli


def convert(src: str, out: str) -> str:
    """Convert ``src`` into ``out``; returns a one-line description of what was written."""
    obj = load_torch(src)
    if not isinstance(obj, dict):
        raise UserError(f"{src}: expected a state dict (a mapping), found {type(obj).__name__}.")
    sd = flat_state_dict(unwrap(obj))
    if is_rrdbnet(sd):
        from jaxsr.saved_model import save_model

        cfg = rrdbnet_config(sd)
        save_model(out, "rrdbnet", cfg, {"params": rrdbnet_params(sd)}, source=os.path.abspath(src))
        size = f"nf={cfg['num_feat']}, nb={cfg['num_block']}, gc={cfg['num_grow_ch']}"
        return f"RRDBNet ×{cfg['scale']} ({size})"
    if is_dasr(sd):
        from jaxsr.saved_model import save_model

        cfg = dasr_config(sd)
        save_model(out, "dasr", cfg, dasr_variables(sd), source=os.path.abspath(src))
        size = f"{cfg['n_groups']} groups × {cfg['n_blocks']} blocks, {cfg['n_feats']} features"
        return f"DASR ×{cfg['scale']} ({size}) with its degradation encoder"
    if is_mirnet(sd):
        from jaxsr.saved_model import save_model

        cfg = mirnet_config(sd)
        save_model(out, "mirnet", cfg, {"params": mirnet_params(sd)}, source=os.path.abspath(src))
        return f"MIRNet ({cfg['n_rrg']} RRGs × {cfg['n_mrb']} MRBs, {cfg['n_feat']} features)"
    if any(k.startswith("features.") for k in sd):
        from jaxsr.models.vgg import vgg19_params_from_torch

        params = vgg19_params_from_torch(sd)
        if "conv1_1" in params:
            os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
            path = out if out.endswith(".npz") else out + ".npz"
            tmp = path + ".tmp.npz"
            np.savez(tmp, **{f"{k}/{leaf}": v for k, p in params.items() for leaf, v in p.items()})
            os.replace(tmp, path)
            return f"VGG19 features ({len(params)} convs) -> {path} (use as --config.vgg_weights)"
    shown = ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in list(sd.items())[:12])
    raise UserError(
        f"{src}: unrecognised layout with {len(sd)} tensors (first: {shown}); supported: "
        "ESRGAN/BasicSR RRDBNet, DASR, MIRNet and torchvision VGG19."
    )


@cli
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m jaxsr.convert", description=__doc__.split("\n")[0])
    p.add_argument("--src", required=True, help="official .pth/.pt checkpoint")
    p.add_argument("--out", required=True, help="output model directory")
    args = p.parse_args(argv)
    print(f"Wrote {args.out}: {convert(args.src, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
