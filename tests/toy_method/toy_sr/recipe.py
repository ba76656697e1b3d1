"""The toy recipe: jaxsr's shared fields, a few steps on the builtin photos."""

import ml_collections

from jaxsr.data.sources import source_config
from jaxsr.recipes import adam_config, data_config, run_config, schedule_config, set_run_length


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = run_config("toy", scale=4)
    c.model = ml_collections.ConfigDict({"name": "toy_net", "num_feat": 8})
    c.losses = ml_collections.ConfigDict({"l1": 1.0})
    c.optim = adam_config(**schedule_config(lr=1e-3, schedule="constant"))
    c.ema_decay = 0.0
    c.data = data_config(source_config("builtin"), patch_size=32, batch_size=8)
    c.data.eval = source_config("builtin", max_images=1)
    c.data.threads = 2
    set_run_length(c, 4, log_every=2, checkpoint_every=2)
    return c
