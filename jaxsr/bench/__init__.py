"""Benchmarks as a library: the timing harness and the suites (``jaxsr.benchmark`` is
the command line)."""
