"""The training loop and its plumbing (state, sharding, checkpoints, optimizers)."""
