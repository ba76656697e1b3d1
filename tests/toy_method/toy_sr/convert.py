"""The toy's "official" checkpoints: ``conv1.weight/bias``, ``conv2.weight/bias``."""

import numpy as np

from jaxsr.convert.common import conv_kernel


def architecture(sd: dict):
    if set(sd) != {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"}:
        return None
    params = {
        name: {"kernel": conv_kernel(sd[f"{name}.weight"]), "bias": np.asarray(sd[f"{name}.bias"])}
        for name in ("conv1", "conv2")
    }
    feat, out = sd["conv1.weight"].shape[0], sd["conv2.weight"].shape[0]
    cfg = {"scale": int(round((out // 3) ** 0.5)), "num_feat": int(feat)}
    origins = {
        ("params", n, leaf): f"{n}.{leaf}"
        for n in ("conv1", "conv2")
        for leaf in ("kernel", "bias")
    }
    return "toy_net", cfg, {"params": params}, origins, f"ToyNet ×{cfg['scale']}", None
