"""The run's metric writer: TensorBoard events in the workdir, local or remote.

Events are written by :class:`jaxsr.train.events.EventWriter` into a local folder —
the workdir itself, or for a remote workdir a staging folder uploaded through
:mod:`jaxsr.files`, each event file whole, whenever the writer is flushed (at every
log, evaluation and checkpoint): object stores cannot append. A resumed run adds its
own event file beside the earlier ones, which TensorBoard reads together.
"""

from __future__ import annotations

import shutil
import tempfile

from jaxsr import files
from jaxsr.files import remote
from jaxsr.train.events import EventWriter, NullWriter


class _MirroredWriter(EventWriter):
    """Writes into ``local``; every flush uploads ``local`` to ``remote``."""

    def __init__(self, local: str, remote_dir: str):
        super().__init__(local)
        self._local, self._remote = local, remote_dir

    def flush(self):
        super().flush()
        remote.bounded(
            lambda: files.upload_tree(self._local, self._remote),
            self._remote,
            "uploading the TensorBoard events",
        )

    def close(self):
        self.flush()
        super().close()
        shutil.rmtree(self._local, ignore_errors=True)  # the local staging folder


def create_writer(workdir: str, *, just_logging: bool = False):
    """The writer of ``workdir``'s TensorBoard events (``just_logging``: one that
    writes nothing, for the processes after the first)."""
    if just_logging:
        return NullWriter()
    if not files.is_remote(workdir):
        return EventWriter(workdir)
    return _MirroredWriter(tempfile.mkdtemp(prefix="jaxsr-events-"), workdir)
