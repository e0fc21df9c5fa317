"""File-system plumbing shared by every module: the home directory, atomic file and directory
writes, lock files and file digests. Standard library only (POSIX: uses ``fcntl``).

Temporary and lock paths are hidden siblings of their target, so renames stay on one file system:
``.{name}.{8 hex}.tmp`` (a build in progress), ``.{name}.{8 hex}.old`` (a replaced directory
during a swap), ``.{name}.{8 hex}.build`` (:func:`locked_build`) and ``.{name}.lock``.

Replacing a directory (``atomic_dir(path, replace=True)``) uses Linux's
``renameat2(RENAME_EXCHANGE)`` where the file system has it (ext4, xfs, btrfs, tmpfs): the new
directory takes the place of the old one in one step and ``path`` never disappears. Elsewhere it
falls back to rename old -> ``.old``, rename new -> ``path``, delete old, and ``path`` is absent
between the two renames (microseconds); readers that must not see that, or that read several files
and want them all from one version, hold ``locked(path, shared=True)`` while reading.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import hashlib
import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "HOME_ENV",
    "atomic_dir",
    "atomic_write",
    "atomic_write_text",
    "ensure_writable_dir",
    "file_digest",
    "home_dir",
    "locked",
    "locked_build",
    "public_mode",
    "read_json",
]

HOME_ENV = "PYTERRIER_HYBRID_HOME"

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (``hashlib`` algorithm name), read in 4 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON document in ``path``; a broken or unreadable file is a ``ValueError`` naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); it was damaged (e.g. cut short by a full disk): "
                         f"restore or remove it") from e


def home_dir() -> Path:
    """``$PYTERRIER_HYBRID_HOME``, else ``~/.cache/pyterrier_hybrid``."""
    env = os.environ.get(HOME_ENV)
    return Path(env) if env else Path.home() / ".cache" / "pyterrier_hybrid"


def ensure_writable_dir(path: str | os.PathLike[str], *, what: str = "output directory") -> Path:
    """Create ``path`` (and parents) if needed and check a file can be written there, so a run fails
    in a second with a clear message instead of after hours of work. Returns the path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"the {what} {path} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test.{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        hint = f" (set ${HOME_ENV} to a writable directory)" if what.startswith("cache") else ""
        raise ValueError(f"the {what} {path} is not writable: {e.strerror or e}{hint}") from e
    return path


def public_mode(path: str | os.PathLike[str]) -> None:
    """Give a file the mode a plain ``open()`` would (0666 less the umask): ``mkstemp`` makes 0600."""
    os.chmod(path, 0o666 & ~_umask())


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a new uniquely named file beside ``path``, then rename it onto ``path``.

    The temp file is created as ``open()`` would create it (mode 0666 less the umask), so results
    stay readable by the group on a shared cluster. On any exception (KeyboardInterrupt included)
    the temp file is removed and ``path`` keeps its old content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_file(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> None:
    """:func:`atomic_write` of ``text``."""
    atomic_write(path, lambda p: p.write_text(text, encoding=encoding))


@contextmanager
def locked(path: str | os.PathLike[str], *, shared: bool = False, wait: bool = True) -> Iterator[None]:
    """Hold an ``flock`` on ``.{name}.lock`` beside ``path`` (exclusive, or ``shared`` for readers).

    ``wait=False``: raise ``BlockingIOError`` at once when another holder has it.
    Works between processes and between threads. The lock file is unlinked on release by a holder
    that has it exclusively (a waiter that then finds its file unlinked retries on a fresh one), so
    no lock file stays behind. Not reentrant: do not nest two ``locked`` of one path. Needs write
    access to the parent directory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    fd = _acquire(lock, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB))
    try:
        yield
    finally:
        try:
            if not shared or _try_lock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB):
                _unlink_if_same(lock, fd)  # we hold it exclusively: no one else can be using it
        finally:
            os.close(fd)


@contextmanager
def atomic_dir(path: str | os.PathLike[str], *, replace: bool) -> Iterator[Path]:
    """Yield a new empty sibling directory to build into; it becomes ``path`` on success.

    ``replace=False``: ``path`` must not exist or be an empty directory (else ``OSError``, e.g. when
    a concurrent writer published first). ``replace=True``: an existing ``path`` is replaced; the old
    directory is removed only once the new one is in place, and stays at ``path`` if publishing
    fails. Concurrent publishers of one path serialize on :func:`locked` (held only for the swap);
    the last to publish wins. On any failure the temp directory is removed and ``path`` is left as
    it was. Only a killed process can leave a ``.tmp`` (or, in the fallback, ``.old``) sibling; the
    next publisher of ``path`` restores or removes a stale ``.old``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "tmp")
    tmp.mkdir()  # unlike mkdtemp (0700), honours the umask
    try:
        yield tmp
        if replace:
            with locked(path):
                _publish(tmp, path)  # afterwards tmp holds the old directory, or nothing
        else:
            os.rename(tmp, path)
    finally:
        _remove(tmp)


@contextmanager
def locked_build(final: str | os.PathLike[str]) -> Iterator[Path | None]:
    """Build ``final`` once across processes: under an exclusive :func:`locked`, yield None if
    ``final`` exists (built by another process meanwhile), else a unique sibling path (not created:
    make a file or a directory there) that is renamed to ``final`` on success and removed on failure.

    Leftovers of killed builders of ``final`` are removed first (every builder holds the lock).
    """
    final = Path(final)
    with locked(final):
        if final.exists():
            yield None
            return
        for stale in _siblings(final, "build"):
            _remove(stale)
        tmp = _sibling(final, "build")
        try:
            yield tmp
            os.replace(tmp, final)
        finally:
            _remove(tmp)


# -- helpers ----------------------------------------------------------------------------------------


def _publish(new: Path, path: Path) -> None:
    """Put directory ``new`` at ``path``; the caller holds ``locked(path)``."""
    _recover(path)
    if not os.path.lexists(path):
        try:
            os.rename(new, path)
            return
        except OSError as err:  # a writer not using the lock got there first: replace it
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    if _exchange(new, path):
        return
    old = _sibling(path, "old")
    try:
        os.rename(path, old)
        os.rename(new, path)
    except BaseException:
        if os.path.lexists(old):
            if os.path.lexists(path):
                _remove(old)  # interrupted once the new directory was in place
            else:
                os.rename(old, path)  # the new one could not be put in place: restore the old
        raise
    _remove(old)


def _recover(path: Path) -> None:
    """Undo a swap whose process was killed: put a stale ``.old`` back if ``path`` is missing,
    else remove it. Only called under ``locked(path)``, so no live swap owns an ``.old``."""
    for old in _siblings(path, "old"):
        if os.path.lexists(path):
            _remove(old)
        else:
            os.rename(old, path)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where the
    system or file system does not support it."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _acquire(lock: Path, operation: int) -> int:
    """An fd holding ``operation`` on the file currently at ``lock`` (retrying when the holder we
    waited for unlinked it)."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, operation)
            if _same_file(lock, fd):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _try_lock(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation)
    except BlockingIOError:
        return False
    return True


def _same_file(path: Path, fd: int) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


def _unlink_if_same(path: Path, fd: int) -> None:
    if _same_file(path, fd):
        path.unlink(missing_ok=True)


def _sibling(path: Path, tag: str) -> Path:
    """A new unique hidden sibling name ``.{name}.{8 hex}.{tag}``."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.{tag}")


def _siblings(path: Path, tag: str) -> list[Path]:
    """Existing siblings named like :func:`_sibling` with ``tag``."""
    prefix, suffix = f".{path.name}.", f".{tag}"
    found = []
    for name in os.listdir(path.parent):
        middle = name[len(prefix) : -len(suffix)]
        if name.startswith(prefix) and name.endswith(suffix) and len(middle) == 8:
            if all(c in "0123456789abcdef" for c in middle):
                found.append(path.parent / name)
    return found


def _new_file(path: Path) -> Path:
    """Create a new empty uniquely named sibling of ``path`` with ``open()``'s mode."""
    while True:
        tmp = _sibling(path, "tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666))
        except FileExistsError:
            continue
        return tmp


def _remove(path: Path) -> None:
    """Remove a file, symlink or directory tree if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _umask() -> int:
    """The process umask, read without changing it where ``/proc`` allows (thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask
