"""On-disk cache of encoded vectors, keyed by (model fingerprint, collection, kind, text mode).

Entries are :class:`~pyterrier_hybrid.index.DenseIndex` directories, so a cached corpus is
directly a searchable index. Writes are atomic (a second process never sees half an entry).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .fs import home_dir  # re-exported: other modules and tests import it here

__all__ = ["VectorCache", "home_dir"]


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
        """The cached vectors for exactly these ids (in this order), or ``None``."""
        from .index import DenseIndex

        path = self.path(key)
        if not (path / "pt_meta.json").is_file():
            return None
        index = DenseIndex(path)
        cached = index.docnos()
        if len(cached) != len(ids) or not np.array_equal(cached, np.asarray(ids, dtype=cached.dtype)):
            return None
        return np.asarray(index.vectors(), dtype=np.float32)

    def put(self, key: str, ids: Sequence[str], vectors: np.ndarray, metadata: dict) -> None:
        """Store vectors (replacing a stale entry atomically)."""
        from .index import DenseIndex

        DenseIndex.build(self.path(key), np.asarray(ids), vectors, metadata=metadata, overwrite=True)

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
            vectors = encode(texts)
            self.put(key, ids, vectors, metadata)
        return vectors
