"""Reading weight files: PyTorch ``.pth``/``.pt`` without torch (:mod:`.torch_pickle`)
and the VGG19 weights of the perceptual losses (:mod:`.vgg`). The per-family key
mappings of official checkpoints are in :mod:`jaxsr.convert`."""
