"""Models outside JAX: ONNX and StableHLO files of any jaxsr generator, each verified
against jaxsr when written (:mod:`jaxsr.deploy.export`), and ONNX Runtime as an
inference backend (:mod:`jaxsr.deploy.runtimes`). ``python -m jaxsr.export`` is the CLI.
"""
