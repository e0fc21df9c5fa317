"""On-disk cache of encoded vectors, keyed by (model fingerprint, collection, kind, text mode).

Entries are :class:`~pyterrier_hybrid.index.DenseIndex` directories, so a cached corpus is
directly a searchable index. Writes are atomic (a second process never sees half an entry; several
writers of one entry publish one after the other). Each entry records a checksum of its vectors
and ids (``pt_meta.json``, ``checksum``), verified on its first use in a process: a damaged entry
(bytes changed, truncated or missing files) is rebuilt with a warning, never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .fs import (  # home_dir re-exported: other modules and tests import it here
    ensure_writable_dir,
    home_dir,
    locked,
)

__all__ = ["CacheEntryWarning", "VectorCache", "checksum", "home_dir"]

#: Entries verified in this process (path -> checksum), so a later read costs no hashing.
_VERIFIED: dict[str, str] = {}


@contextlib.contextmanager
def _read_lock(path: Path) -> Iterator[None]:
    """A shared lock on an entry while it is read; none where the cache is read-only."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(locked(path, shared=True))
        except OSError:  # a read-only shared cache: nobody writes it either
            pass
        yield


class CacheEntryWarning(UserWarning):
    """A damaged vector-cache entry was found; it is rebuilt."""


def checksum(ids: np.ndarray, vectors: np.ndarray) -> str:
    """Content hash of an entry: its ids (in order) and float32 vectors."""
    try:
        import xxhash

        h = xxhash.xxh3_128()
    except ImportError:  # pragma: no cover - xxhash comes with `datasets`
        h = hashlib.blake2b(digest_size=16)
    h.update("\x1f".join(map(str, ids)).encode())
    h.update(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    return h.hexdigest()


class VectorCache:
    """Vectors of a collection's texts for one model, stored once and reused across runs."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else home_dir() / "vectors"

    def __repr__(self) -> str:
        return f"VectorCache({str(self.root)!r})"

    @staticmethod
    def key(*, fingerprint: str, collection: str, kind: str, text_mode: str) -> str:
        """The entry name: readable collection/kind plus a hash of every part of the key."""
        digest = hashlib.sha1(json.dumps([fingerprint, collection, kind, text_mode]).encode()).hexdigest()[:16]
        safe = "".join(c if c.isalnum() or c in "-." else "_" for c in collection)
        return f"{safe}.{kind}.{digest}"

    def path(self, key: str) -> Path:
        return self.root / key

    def get(self, key: str, ids: Sequence[str]) -> np.ndarray | None:
        """The cached vectors for exactly these ids (in this order), or ``None`` (absent, for other
        ids, or damaged: then with a :class:`CacheEntryWarning`)."""
        from .index import DenseIndex

        path = self.path(key)
        if not (path / "pt_meta.json").exists():
            return None
        try:
            with _read_lock(path):  # all files from one publication (a writer swaps under the lock)
                index = DenseIndex(path)
                cached = np.array(index.docnos())
                vectors = np.array(index.vectors(), dtype=np.float32)
                stored = index.metadata.get("checksum")
            if _VERIFIED.get(str(path)) != stored or stored is None:
                actual = checksum(cached, vectors)
                if stored is not None and actual != stored:
                    raise ValueError(f"checksum {actual} differs from the recorded {stored}")
                _VERIFIED[str(path)] = stored or actual
        except Exception as e:  # truncated, missing or altered files: rebuild, never use
            warnings.warn(f"vector cache entry {path} is damaged ({type(e).__name__}: {e}); it is rebuilt",
                          CacheEntryWarning, stacklevel=3)
            _VERIFIED.pop(str(path), None)
            return None
        if len(cached) != len(ids) or not np.array_equal(cached, np.asarray(ids, dtype=cached.dtype)):
            return None
        return vectors

    def put(self, key: str, ids: Sequence[str], vectors: np.ndarray, metadata: dict) -> None:
        """Store vectors (replacing a stale or damaged entry atomically), with their checksum."""
        from .index import DenseIndex

        ensure_writable_dir(self.root, what="cache directory")
        ids = np.asarray(ids)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        digest = checksum(ids, vectors)
        self._set_aside_if_unreadable(self.path(key))
        DenseIndex.build(self.path(key), ids, vectors, metadata={**metadata, "checksum": digest}, overwrite=True)
        _VERIFIED[str(self.path(key))] = digest

    @staticmethod
    def _set_aside_if_unreadable(path: Path) -> None:
        """Remove an entry whose ``pt_meta.json`` cannot be read, so that it can be rebuilt (a dense
        index refuses to replace what it does not recognise; the cache owns its entries)."""
        from .index.storage import _is_dense_index

        if not path.is_dir() or _is_dense_index(path):
            return
        with locked(path):
            if path.is_dir() and not _is_dense_index(path):
                aside = path.with_name(f".{path.name}.{os.getpid()}.damaged")
                path.rename(aside)
                shutil.rmtree(aside, ignore_errors=True)

    def check_writable(self) -> None:
        """Fail now, with a clear message, if entries could not be stored later."""
        ensure_writable_dir(self.root, what="cache directory")

    def check_usable(self) -> None:
        """Fail now if entries will have to be stored but cannot: the cache is not writable and holds
        no entry. A read-only cache with entries is used; a missing entry fails before it is encoded."""
        try:
            self.check_writable()
        except ValueError:
            if self.root.is_dir() and any(self.root.iterdir()):
                return
            raise

    def get_or_encode(
        self,
        key: str,
        ids: Sequence[str],
        texts: Sequence[str],
        encode: Callable[[Sequence[str]], np.ndarray],
        metadata: dict,
    ) -> np.ndarray:
        """Cached vectors of ``ids`` if present, else ``encode(texts)``, stored for next time."""
        vectors = self.get(key, ids)
        if vectors is None:
            self.check_writable()  # before the encoding, which may take long
            vectors = encode(texts)
            self.put(key, ids, vectors, metadata)
        return vectors
