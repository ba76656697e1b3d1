"""Import official PyTorch checkpoints into jaxsr parameter trees."""

from jaxsr.convert.common import conv_kernel, dense_kernel, strip_prefix, unwrap
from jaxsr.convert.rrdbnet import is_rrdbnet, rrdbnet_config, rrdbnet_params
from jaxsr.trees import nest

__all__ = [
    "conv_kernel",
    "dense_kernel",
    "is_rrdbnet",
    "nest",
    "rrdbnet_config",
    "rrdbnet_params",
    "strip_prefix",
    "unwrap",
]
