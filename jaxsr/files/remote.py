"""Object stores (``gs://``): whole-object writes, the routing switch, the lock object.

Every remote access of jaxsr, and of the libraries it drives, goes through one client
stack that honours one switch:

* files, listings, model directories, datasets, evaluation outputs: ``etils.epath``
  on ``fsspec``/``gcsfs`` (jaxsr sets ``EPATH_USE_TF=false`` so that epath does not
  pick TensorFlow's GCS client, which no setting can send to another endpoint); the
  same epath serves Orbax's checkpoint metadata and JAX's compilation cache;
* checkpoint arrays: TensorStore (through Orbax), routed by ``TENSORSTORE_GCS_HTTP_URL``;
* ArrayRecord shards (grain, TFDS): ``google-cloud-cpp``, routed by
  ``CLOUD_STORAGE_EMULATOR_ENDPOINT``;
* the workdir lock: ``google-cloud-storage`` (generation preconditions).

``STORAGE_EMULATOR_HOST`` (the variable Google's own client libraries read) is that
switch: when it is set, :func:`configure_environment` derives the others from it, so
that a local server (``fake-gcs-server`` in the tests) receives every request.

An object appears whole or not at all: every file is uploaded in one request (or
one resumable upload that the server makes visible only when complete), never
appended to. A directory is uploaded file by file with its marker file last (a model
directory's ``model.json``, a dataset's ``index.json``), so a half-uploaded one is
never taken for complete.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import urllib.parse

from absl import logging

from jaxsr.errors import UserError

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
TIMEOUT_ENV = "JAXSR_STORAGE_TIMEOUT"


REQUEST_TIMEOUT_S = 60.0  # one HTTP request to the object store


def timeout_s() -> float:
    """How long one storage phase of a run (a checkpoint, a log upload) may wait for an
    object store that does not answer: ``$JAXSR_STORAGE_TIMEOUT`` seconds, default 600
    (the client libraries' own retries would wait for up to half an hour)."""
    try:
        return float(os.environ.get(TIMEOUT_ENV, "600"))
    except ValueError:
        value = os.environ[TIMEOUT_ENV]
        raise UserError(f"{TIMEOUT_ENV}={value!r} is not a number of seconds.") from None


class StorageTimeout(UserError):
    """The object store did not answer in time; the work in flight is abandoned."""


_stalled: list[StorageTimeout] = []  # the first timeout of this process, if any


def bounded(fn, path: str, doing: str):
    """``fn()``, given at most :func:`timeout_s` when ``path`` is remote.

    A request to a server that stopped answering blocks inside the client library,
    which cannot be interrupted; ``fn`` then runs on in a daemon thread that is
    abandoned, and :class:`StorageTimeout` says what was not finished."""
    if "://" not in str(path):
        return fn()
    if _stalled:  # the store already stopped answering: waiting again only delays the end
        raise _stalled[0]
    result: dict = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as e:  # handed to the caller's thread
            result["error"] = e

    worker = threading.Thread(target=run, daemon=True, name=f"jaxsr-storage: {doing}")
    worker.start()
    worker.join(timeout_s())
    if worker.is_alive():
        where = os.environ.get(EMULATOR_ENV) or "the object store"
        _stalled.append(
            StorageTimeout(
                f"{path} did not answer for {timeout_s():.0f} s while {doing} (server: "
                f"{where}); check the connection and the bucket, then run the command again: "
                "it resumes from the last complete checkpoint."
            )
        )
        raise _stalled[0]
    if "error" in result:
        raise result["error"]
    return result.get("value")


def configure_environment() -> None:
    """Route every client library to ``$STORAGE_EMULATOR_HOST`` when it is set, and
    keep epath on fsspec. Called when jaxsr is imported and before each remote access
    (idempotent); child processes inherit the settings."""
    os.environ.setdefault("EPATH_USE_TF", "false")
    host = os.environ.get(EMULATOR_ENV, "")
    if host and host != "default":
        url = host if "://" in host else f"http://{host}"
        os.environ["TENSORSTORE_GCS_HTTP_URL"] = url
        os.environ["CLOUD_STORAGE_EMULATOR_ENDPOINT"] = url
        # The emulator takes no credentials; without a token TensorStore searches for
        # them (and says so in an error line) before going on anonymously.
        if not os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            os.environ.setdefault("GOOGLE_AUTH_TOKEN_FOR_TESTING", "emulator")
        # gcsfs asks Google's storage-control API (gRPC, not routable) whether a bucket
        # is zonal; an emulator has none.
        os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
    # gcsfs logs each request that ran out of retries with a traceback; jaxsr reports
    # the failure itself, in one sentence (storage_error).
    logging.logging.getLogger("gcsfs").setLevel(logging.logging.CRITICAL)


_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")


def check_url(path: str) -> str:
    """``path`` itself if it is an object-store URL in canonical form, else one sentence.

    Every library on the way spells a key its own way: jaxsr's files keep it as
    written, Orbax and TensorStore normalise ``//`` and ``.`` and decode ``%41`` to
    ``A``. A name that two of them would read differently splits one run's files over
    two places (``gs://b//run`` resumes ``gs://b/run``'s checkpoints past its lock), so
    such names are refused before anything is read or written: an empty bucket or
    segment, ``.`` or ``..`` segments, ``%``-escapes, ``#`` and ``?``, control
    characters. One trailing ``/`` is allowed (a folder spelt as a prefix)."""
    scheme, sep, rest = str(path).partition("://")
    bucket, _, key = rest.partition("/")
    segments = key[:-1].split("/") if key.endswith("/") else key.split("/")
    problem = None
    if not sep or not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        problem = "it is not a URL of the form gs://BUCKET/PATH"
    elif not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        problem = f"{bucket!r} is not a bucket name (3-222 of a-z 0-9 . _ -)"
    elif key and any(s == "" for s in segments):
        problem = "it has an empty path segment ('//')"
    elif key and any(s in (".", "..") for s in segments):
        problem = "it has a '.' or '..' segment"
    elif any(c in key for c in "%#?") or any(ord(c) < 32 or ord(c) == 127 for c in key):
        problem = "it has a '%', '#', '?' or control character, which libraries decode differently"
    if problem:
        raise UserError(
            f"{path!r} cannot be used: {problem}; write the object-store path in its plain "
            "form (gs://bucket/a/b)."
        )
    return path


def _fs(path: str):
    """The fsspec filesystem epath uses for ``path`` (one instance per process)."""
    check_url(path)
    configure_environment()
    import fsspec
    from etils.epath import backend

    # Listings are read fresh: another process (or another run) may have written. A
    # request the server drops is given up after REQUEST_TIMEOUT_S and retried by gcsfs
    # (six tries, about 30 s of back-off): a bounded retry, never a wait without end.
    for protocol in ("gs", "gcs"):
        conf = fsspec.config.conf.setdefault(protocol, {})
        conf.setdefault("use_listings_cache", False)
        conf.setdefault("requests_timeout", min(REQUEST_TIMEOUT_S, timeout_s()))
    _check_reachable()
    return backend.fsspec_backend.fs(path)


_reached: list[str] = []  # the endpoint this process has connected to


def _endpoint() -> tuple[str, int]:
    host = os.environ.get(EMULATOR_ENV, "")
    if not host or host == "default":
        return "storage.googleapis.com", 443
    url = urllib.parse.urlsplit(host if "://" in host else f"http://{host}")
    return url.hostname or "localhost", url.port or (443 if url.scheme == "https" else 80)


def _check_reachable() -> None:
    """Once per process: a TCP connection to the object store's endpoint, so that a
    refused or unroutable one is one sentence at once, not gcsfs's half minute of
    retries and a traceback."""
    host, port = _endpoint()
    if f"{host}:{port}" in _reached:
        return
    try:
        socket.create_connection((host, port), timeout=min(10.0, timeout_s())).close()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise UserError(
            f"Cannot connect to the object store at {host}:{port} ({reason}); check "
            f"{EMULATOR_ENV}, the network and the endpoint, then run the command again."
        ) from None
    _reached.append(f"{host}:{port}")


def _bucket(path: str) -> tuple[str, str]:
    """``('bkt', 'a/b')`` of ``gs://bkt/a/b``."""
    rest = check_url(path).split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    return bucket, key.rstrip("/")


def storage_error(path: str, e: Exception, doing: str = "reach") -> UserError:
    """One sentence for a failed object-store request."""
    reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
    where = os.environ.get(EMULATOR_ENV) or "the object store"
    return UserError(
        f"Could not {doing} {path}: {type(e).__name__}: {reason} (server: {where}); check "
        "the bucket, your credentials and the connection, then run the command again "
        "(a run resumes from its last complete checkpoint)."
    )


def _operation(doing: str):
    """Decorate a storage call on a path: bounded by :func:`bounded` (a server that
    stops answering cannot hang it), and any failure but a missing object turned into
    one sentence (:func:`storage_error`)."""

    def wrap(fn):
        @functools.wraps(fn)
        def call(path, *args, **kwargs):
            try:
                return bounded(lambda: fn(path, *args, **kwargs), path, f"{doing} {path}")
            except (UserError, FileNotFoundError):
                raise
            except Exception as e:  # connection failures, HTTP errors, auth errors
                raise storage_error(path, e, doing) from e

        return call

    return wrap


@_operation("checking the bucket of")
def check_bucket(path: str) -> None:
    """Stop in one sentence when ``path``'s bucket does not exist or cannot be seen."""
    bucket, _ = _bucket(path)
    found = _fs(path).exists(bucket)
    if not found:
        raise UserError(
            f"The bucket gs://{bucket} of {path} does not exist or you cannot see it; create "
            "it (gcloud storage buckets create) or check the name and your credentials."
        )


@_operation("reading")
def exists(path: str) -> bool:
    return _fs(path).exists(path)


@_operation("reading")
def isdir(path: str) -> bool:
    return _fs(path).isdir(path)


@_operation("reading")
def isfile(path: str) -> bool:
    return _fs(path).isfile(path)


def file_problem(path: str) -> str | None:
    if isfile(path):
        return None
    return "a folder, not a file" if isdir(path) else "no such object"


@_operation("listing")
def listdir(path: str) -> list[str]:
    try:
        return sorted(os.path.basename(p.rstrip("/")) for p in _fs(path).ls(path, detail=False))
    except FileNotFoundError:
        return []


@_operation("listing")
def find(root: str) -> list[str]:
    """Every object under ``root``, relative to it."""
    prefix = root.split("://", 1)[1].rstrip("/") + "/"
    return [k[len(prefix) :] for k in _fs(root).find(root) if k.startswith(prefix)]


@_operation("reading")
def read_bytes(path: str) -> bytes:
    with _fs(path).open(path, "rb") as f:
        return f.read()


@_operation("opening")
def open_read(path: str):
    return _fs(path).open(path, "rb")


@_operation("reading")
def size(path: str) -> int:
    return int(_fs(path).info(path)["size"])


def upload(local: str, path: str) -> None:
    """One object ``path`` with the bytes of the local file ``local``."""
    _put(path, local)


@_operation("writing")
def _put(path: str, local: str) -> None:
    _fs(path).put_file(local, path)


@_operation("removing")
def remove(path: str) -> None:
    _fs(path).rm(path, recursive=False)


@_operation("copying")
def copy(src: str, dst: str) -> None:
    """Server-side copy of one object."""
    _fs(src).copy(src, dst)


@_operation("moving")
def move_tree(src: str, dst: str) -> None:
    """Every object under ``src`` to ``dst`` (copied server-side, then removed)."""
    fs = _fs(src)
    fs.copy(src.rstrip("/") + "/", dst.rstrip("/") + "/", recursive=True)
    fs.rm(src, recursive=True)


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
    """A local temporary file that becomes the object ``path`` in one upload when the
    block succeeds (nothing is uploaded when it fails)."""
    folder = tempfile.mkdtemp(prefix="jaxsr-upload-")
    tmp = os.path.join(folder, "file" + suffix)
    try:
        yield tmp
        upload(tmp, path)
    except OSError as e:
        raise storage_error(path, e, "write") from e
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str, marker: str | None = None):
    """A local temporary folder whose files become objects under ``path`` when the
    block succeeds; ``marker`` (the file that makes the directory usable) is removed
    first and uploaded last, so a directory caught half-way is never taken for whole."""
    folder = tempfile.mkdtemp(prefix="jaxsr-upload-")
    try:
        yield folder
        names = sorted(os.listdir(folder), key=lambda n: n == marker)
        if marker and exists(os.path.join(path, marker)):
            remove(os.path.join(path, marker))
        for name in names:
            upload(os.path.join(folder, name), os.path.join(path, name))
    except OSError as e:
        raise storage_error(path, e, "write") from e
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- one writer --------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _ended_here(holder: dict) -> bool:
    """Whether the lock's holder was a process of this host that no longer runs (its
    lock is stale at once, as a local ``flock`` would be)."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, owned by another user
        return False
    return False


class ObjectLock:
    """One writer per remote workdir: a lock object made only if absent.

    ``acquire`` uploads ``path`` with the precondition "no live generation" (GCS's
    ``ifGenerationMatch=0``), naming pid, host and time; a thread rewrites it every
    ``refresh_s`` seconds with the precondition "still my generation". A second run
    finds it and is refused in one sentence; a lock not rewritten for ``stale_s``
    seconds (its holder died without releasing it) is taken over with a warning, by a
    rewrite conditioned on the stale generation, so of two runs taking it over at once
    one wins. If the holder finds its lock taken over (it stalled past ``stale_s``),
    :meth:`check` raises so that it stops before writing again.
    """

    def __init__(self, path: str, *, refresh_s: float = 60.0, stale_s: float = 600.0):
        self.path, self.refresh_s, self.stale_s = path, refresh_s, stale_s
        self._generation = None
        self._lost = None
        self._stop = threading.Event()
        self._thread = None

    def _blob(self):
        configure_environment()
        from google.cloud import storage

        bucket, key = _bucket(self.path)
        return storage.Client().bucket(bucket).blob(key)

    def _content(self, since: str) -> str:
        return json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "since": since,
                "refreshed": _now().isoformat(timespec="seconds"),
            }
        )

    def acquire(self) -> None:
        bounded(self._acquire, self.path, "taking the workdir lock")

    def _acquire(self) -> None:
        from google.api_core import exceptions as gexc

        self._since = _now().isoformat(timespec="seconds")
        blob = self._blob()
        try:
            try:
                blob.upload_from_string(self._content(self._since), if_generation_match=0)
            except gexc.PreconditionFailed:
                self._take_over_if_stale(blob)
        except gexc.GoogleAPIError as e:
            raise storage_error(self.path, e, "lock") from e
        except OSError as e:  # requests' connection errors
            raise storage_error(self.path, e, "lock") from e
        self._generation = blob.generation
        self._thread = threading.Thread(target=self._keep_fresh, daemon=True)
        self._thread.start()

    def _take_over_if_stale(self, blob) -> None:
        from google.api_core import exceptions as gexc

        blob.reload()
        try:
            holder = json.loads(blob.download_as_bytes(if_generation_match=blob.generation))
        except (gexc.GoogleAPIError, ValueError):
            holder = {}
        age = (_now() - blob.updated).total_seconds()
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')} since " + str(
            holder.get("since", "?")
        )
        if age < self.stale_s and not _ended_here(holder):
            raise UserError(
                f"{os.path.dirname(self.path)} is in use by another jaxsr run ({who}, seen "
                f"{age:.0f} s ago); wait for it to end or stop it, or choose another --workdir."
            )
        try:
            blob.upload_from_string(self._content(self._since), if_generation_match=blob.generation)
        except gexc.PreconditionFailed:
            raise UserError(
                f"{os.path.dirname(self.path)} was just taken by another jaxsr run; choose "
                "another --workdir or wait for it to end."
            ) from None
        logging.warning(
            "Took over the lock of %s from a run that ended or was not seen for %.0f s (%s).",
            os.path.dirname(self.path),
            age,
            who,
        )

    def _keep_fresh(self) -> None:
        while not self._stop.wait(self.refresh_s) and self.refresh():
            pass

    def refresh(self) -> bool:
        """Rewrite the lock if it is still this run's; ``False`` once it was taken over."""
        from google.api_core import exceptions as gexc

        blob = self._blob()
        try:
            blob.upload_from_string(
                self._content(self._since), if_generation_match=self._generation
            )
            self._generation = blob.generation
        except gexc.PreconditionFailed:
            self._lost = "another run took it over while this one was not refreshing it"
            return False
        except Exception as e:  # a passing network error: try again next time
            logging.warning("Could not refresh the lock %s (%s).", self.path, e)
        return True

    def check(self) -> None:
        """Raise if this run no longer holds the lock."""
        if self._lost:
            raise UserError(
                f"This run lost the lock of {os.path.dirname(self.path)}: {self._lost}. It "
                "stops without writing; make sure only one run uses the workdir."
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._generation is not None and not self._lost:
            with contextlib.suppress(Exception):  # an expired lock is taken over anyway
                self._blob().delete(if_generation_match=self._generation)
        self._generation = None
