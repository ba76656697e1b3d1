"""jaxsr: super-resolution and image restoration in JAX/Flax at accelerator scale."""

__version__ = "0.1.0"
