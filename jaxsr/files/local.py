"""Local files written so that nothing is lost: atomically, honouring the umask.

Every local file jaxsr writes (images, JSON, model directories) is first written under a
temporary name in the target's folder and then renamed over the target, so a crash
or a full disk never leaves a half-written file, and the temporary is removed when
writing fails. ``mkstemp``/``mkdtemp`` create 0600/0700 entries; the final modes
follow the umask like any other tool's (0644/0755 under the usual 022).

A directory is replaced by exchanging it with its new version in one ``renameat2``
call where the kernel offers it (Linux), so there is no moment without a complete
directory under the name; elsewhere the old one is renamed aside first and removed
only after the new one is in place.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import shutil
import stat
import tempfile

from jaxsr.errors import UserError


def file_problem(path: str) -> str | None:
    """Why ``path`` cannot be read as a regular file, in words (``None``: it can).

    Tells a missing file from a dangling or looping symbolic link, a folder and a FIFO
    or device, which would otherwise be reported as "no such file" or block a reader
    forever."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link that loops back on itself"
        if e.errno == errno.ENOENT and os.path.islink(path):
            return f"a symbolic link to {os.readlink(path)!r}, which does not exist"
        if e.errno == errno.ENOENT:
            return "no such file"
        return e.strerror or str(e)
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not a regular file"
    return "a device or socket, not a regular file"


def current_umask() -> int:
    """The process umask, read without changing it where ``/proc`` allows (thread-safe)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_error(path: str, e: OSError) -> UserError:
    """One sentence for an OS error met while writing ``path``."""
    reason = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        hint = "free some space (or choose another location) and run the command again"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "choose a location you can write to"
    else:
        hint = "check the path and run the command again"
    return UserError(f"Could not write {path}: {reason}; nothing was left half-written; {hint}.")


def make_dirs(folder: str) -> None:
    """``os.makedirs(folder, exist_ok=True)`` with a one-sentence error."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UserError(f"{folder} is a file, not a folder; choose another path.")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise write_error(folder, e) from e


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = ""):
    """Yield a temporary path beside ``path``; when the block succeeds it replaces
    ``path`` (mode ``0666 & ~umask``). On failure the temporary file is removed and an
    ``OSError`` becomes a :class:`UserError` naming ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    make_dirs(folder)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
        os.close(fd)
    except OSError as e:
        raise write_error(path, e) from e
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except OSError as e:
        raise write_error(path, e) from e
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def _libc_renameat2():
    if not hasattr(os, "O_PATH"):  # not Linux
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.renameat2
    except (OSError, AttributeError):
        return None


_RENAMEAT2 = _libc_renameat2()
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: str, b: str) -> bool:
    """Swap two existing paths in one step; ``False`` where the system cannot."""
    if _RENAMEAT2 is None:
        return False
    rc = _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # e.g. a filesystem without it
        return False
    raise OSError(err, os.strerror(err), b)


@contextlib.contextmanager
def atomic_dir(path: str):
    """Yield a temporary folder beside ``path``; when the block succeeds the folder
    takes ``path``'s place (an existing ``path`` is exchanged, then removed). The caller
    decides beforehand whether an existing ``path`` may be replaced."""
    parent = os.path.dirname(os.path.abspath(path))
    make_dirs(parent)
    try:
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    except OSError as e:
        raise write_error(path, e) from e
    try:
        yield tmp
        mode = 0o777 & ~current_umask()
        os.chmod(tmp, mode)
        for name in os.listdir(tmp):
            os.chmod(os.path.join(tmp, name), mode & 0o666)
        if os.path.isdir(path):
            if not _exchange(tmp, path):
                aside = tempfile.mkdtemp(prefix=".old-", dir=parent)
                os.replace(path, aside)  # an empty dir is replaced by rename
                os.rename(tmp, path)
                tmp = aside
        else:
            os.rename(tmp, path)
    except OSError as e:
        raise write_error(path, e) from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the new one on failure, the old one on success
