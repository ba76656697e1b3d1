"""The run's metric writer: log lines and TensorBoard events, local or remote workdir.

clu's writer writes TensorBoard events with TensorFlow's file system, whose GCS client
no setting can route to another endpoint (so ``STORAGE_EMULATOR_HOST`` could not
cover it) and which appends to objects as it goes. For a remote workdir the events
are therefore written to a local folder and uploaded through :mod:`jaxsr.files`, each
event file whole, whenever the writer is flushed (at every log, evaluation and
checkpoint); a resumed run adds its own event file beside the earlier ones, which
TensorBoard reads together.
"""

from __future__ import annotations

import shutil
import tempfile

from clu import metric_writers

from jaxsr import files
from jaxsr.files import remote


class _MirroredWriter(metric_writers.MetricWriter):
    """``inner`` writes into ``local``; every flush uploads ``local`` to ``remote``."""

    def __init__(self, inner, local: str, remote: str):
        self._inner, self._local, self._remote = inner, local, remote

    def write_summaries(self, *a, **k):
        self._inner.write_summaries(*a, **k)

    def write_scalars(self, *a, **k):
        self._inner.write_scalars(*a, **k)

    def write_images(self, *a, **k):
        self._inner.write_images(*a, **k)

    def write_videos(self, *a, **k):
        self._inner.write_videos(*a, **k)

    def write_audios(self, *a, **k):
        self._inner.write_audios(*a, **k)

    def write_texts(self, *a, **k):
        self._inner.write_texts(*a, **k)

    def write_histograms(self, *a, **k):
        self._inner.write_histograms(*a, **k)

    def write_hparams(self, *a, **k):
        self._inner.write_hparams(*a, **k)

    def flush(self):
        self._inner.flush()
        remote.bounded(
            lambda: files.upload_tree(self._local, self._remote),
            self._remote,
            "uploading the TensorBoard events",
        )

    def close(self):
        self.flush()
        self._inner.close()
        shutil.rmtree(self._local, ignore_errors=True)  # the local staging folder


def create_writer(workdir: str, *, just_logging: bool = False):
    """clu's default writer (log lines + TensorBoard events in ``workdir``)."""
    if just_logging or not files.is_remote(workdir):
        return metric_writers.create_default_writer(workdir, just_logging=just_logging)
    local = tempfile.mkdtemp(prefix="jaxsr-events-")
    inner = metric_writers.create_default_writer(local)
    return _MirroredWriter(inner, local, workdir)
