"""The storage layer: every file jaxsr reads or writes, local or on an object store.

A path is a local path or a URL (``gs://bucket/...``); the functions here take either
and keep the same promises on both:

* writes are whole or absent: a local file is written under a temporary name and
  renamed into place (:mod:`.local`: umask modes, ``renameat2`` directory exchange);
  an object is uploaded in one request from a finished local file (:mod:`.remote`);
* nothing is deleted that jaxsr did not make;
* errors are one sentence naming the path (:class:`~jaxsr.errors.UserError`).

Why ``etils.epath`` on ``fsspec``/``gcsfs`` (see :mod:`.remote`): Orbax, Flax, JAX's
compilation cache and grain already reach object stores through epath, so jaxsr's own
files take the same path type and the same client, configured and redirected in one
place (``STORAGE_EMULATOR_HOST``), instead of a second stack beside theirs. Local
paths go straight to the OS (no behaviour of the local guarantees changes).

Libraries that need a local file name (Pillow, numpy's ``savez``, ArrayRecord's
writer) write into :func:`atomic_path`/:func:`atomic_dir`'s temporary, which becomes
the target when the block succeeds. Readers take bytes (:func:`read_bytes`).
"""

from __future__ import annotations

import io
import json
import os
import shutil

from jaxsr.errors import UserError
from jaxsr.files import local, remote
from jaxsr.files.local import current_umask, make_dirs, write_error  # noqa: F401

remote.configure_environment()


def is_remote(path: str) -> bool:
    """An object-store URL (``gs://``, ``s3://``): no local folder, locks or ``abspath``."""
    return "://" in str(path)


def absolute(path: str) -> str:
    """``os.path.abspath`` for local paths; URLs as they are."""
    return path if is_remote(path) else os.path.abspath(path)


def resolved(path: str) -> str:
    """A path's canonical spelling: local links resolved, a URL without trailing ``/``."""
    return path.rstrip("/") if is_remote(path) else os.path.realpath(path)


def same_path(a: str, b: str) -> bool:
    """Whether two paths name the same place."""
    return resolved(a) == resolved(b)


def exists(path: str) -> bool:
    return remote.exists(path) if is_remote(path) else os.path.lexists(path)


def isdir(path: str) -> bool:
    return remote.isdir(path) if is_remote(path) else os.path.isdir(path)


def isfile(path: str) -> bool:
    return file_problem(path) is None


def size(path: str) -> int:
    return remote.size(path) if is_remote(path) else os.path.getsize(path)


def walk_files(root: str) -> list[str]:
    """Every file under ``root`` as sorted paths relative to it (hidden ones left out)."""
    if is_remote(root):
        rels = remote.find(root)
    else:
        rels = []
        for d, dirs, names in os.walk(root):
            dirs[:] = [x for x in dirs if not x.startswith(".")]
            rels += [os.path.relpath(os.path.join(d, n), root) for n in names]
    return sorted(r for r in rels if not any(part.startswith(".") for part in r.split("/")))


def file_problem(path: str) -> str | None:
    """Why ``path`` cannot be read as a file, in words (``None``: it can); locally a
    FIFO, a device, a dangling or looping link are named as such."""
    return remote.file_problem(path) if is_remote(path) else local.file_problem(path)


def listdir(path: str) -> list[str]:
    """Sorted names in a folder (on an object store: under the prefix ``path/``)."""
    return remote.listdir(path) if is_remote(path) else sorted(os.listdir(path))


def makedirs(path: str) -> None:
    """Make a local folder (one-sentence errors); on an object store check the bucket
    (folders are only prefixes there)."""
    if is_remote(path):
        remote.check_bucket(path)
    else:
        make_dirs(path)


def read_bytes(path: str) -> bytes:
    if is_remote(path):
        try:
            return remote.read_bytes(path)
        except FileNotFoundError as e:
            raise UserError(f"{path}: no such object.") from e
        except Exception as e:
            raise remote.storage_error(path, e, "read") from e
    with open(path, "rb") as f:
        return f.read()


def open_read(path: str):
    """A binary file object for reading part of ``path`` (an image header, say); on an
    object store reads are ranged requests."""
    return remote.open_read(path) if is_remote(path) else open(path, "rb")


def load_numpy(path: str):
    """An ``.npy`` array, or an ``.npz`` as ``{name: array}``, without pickles."""
    import numpy as np

    loaded = np.load(io.BytesIO(read_bytes(path)), allow_pickle=False)
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        return dict(loaded)


def read_text(path: str) -> str:
    return read_bytes(path).decode()


def read_json(path: str, what: str = "file"):
    """The JSON object in ``path``; a missing, truncated, empty or non-object file is one
    :class:`UserError` naming it (``what`` says what the file is to the user)."""
    problem = file_problem(path)
    if problem:
        raise UserError(f"{path}: {problem}; cannot read the {what}.")
    try:
        obj = json.loads(read_bytes(path))
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise UserError(
            f"{path}: the {what} is damaged or truncated ({type(e).__name__}: {e}); restore "
            "it from a copy, or start again in a new folder."
        ) from e
    if not isinstance(obj, dict):
        raise UserError(
            f"{path}: the {what} holds a JSON {type(obj).__name__}, not an object; restore it "
            "from a copy, or start again in a new folder."
        )
    return obj


def atomic_path(path: str, suffix: str = ""):
    """Context manager: a temporary local path that replaces ``path`` (a local file or an
    object) when the block succeeds; on failure nothing changes at ``path``."""
    return remote.atomic_path(path, suffix) if is_remote(path) else local.atomic_path(path, suffix)


def atomic_dir(path: str, marker: str | None = None):
    """Context manager: a temporary local folder that takes ``path``'s place when the
    block succeeds (locally one exchange; remotely file by file, ``marker`` last)."""
    return remote.atomic_dir(path, marker) if is_remote(path) else local.atomic_dir(path)


def _json_safe(obj):
    """NaN and infinities as ``null``: JSON has no such numbers (``json.dump`` would
    write bare ``NaN``, which strict readers refuse)."""
    if isinstance(obj, float) and obj != obj or obj in (float("inf"), float("-inf")):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def write_json_atomic(path: str, obj) -> None:
    """``json.dump(obj)`` to ``path`` atomically; NaN and infinities become ``null``."""
    with atomic_path(path, ".json") as tmp, open(tmp, "w") as f:
        json.dump(_json_safe(obj), f, indent=2, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())


def upload_tree(local_dir: str, path: str) -> None:
    """Every file under ``local_dir`` to ``path`` (whole objects; a local ``path`` gets
    atomic copies). Used to mirror TensorBoard's local event files to a remote workdir."""
    for dirpath, _, names in os.walk(local_dir):
        for name in names:
            src = os.path.join(dirpath, name)
            dst = os.path.join(path, os.path.relpath(src, local_dir))
            if is_remote(dst):
                remote.upload(src, dst)
            else:
                with atomic_path(dst) as tmp:
                    shutil.copyfile(src, tmp)


def link(src: str, dst: str) -> None:
    """Make ``dst`` show the file ``src`` (kept if it exists): a symbolic link in a local
    folder, a copy of the object on an object store (which has no links)."""
    if exists(dst):
        return
    if is_remote(dst):
        if is_remote(src):
            remote.copy(src, dst)
        else:
            remote.upload(src, dst)
    else:
        make_dirs(os.path.dirname(dst))
        os.symlink(src, dst)


def move_aside(src: str, dst: str) -> None:
    """Move a folder jaxsr made (a damaged checkpoint) to ``dst``, never deleting it."""
    if is_remote(src):
        remote.move_tree(src, dst)
    else:
        make_dirs(os.path.dirname(dst))
        os.rename(src, dst)
