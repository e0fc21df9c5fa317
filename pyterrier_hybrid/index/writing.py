"""Writing an index's payload: ``{docno, doc_vec}`` records in chunks, the checks of vectors
(2-D, one dimension, finite), docnos (str, unique) and metadata (a JSON object), and the files
``vecs.f4`` and ``docnos.npids`` (:mod:`.storage` holds the format and the directory around them)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .docnos import write_npids
from .layout import CHUNK

__all__ = ["check_metadata", "record_chunks", "write_payload"]


def record_chunks(records: Iterable[dict[str, Any]]) -> Iterator[tuple[list[Any], np.ndarray]]:
    """(docnos, vector matrix) chunks from ``{'docno', 'doc_vec'}`` records."""
    records = iter(records)
    while chunk := list(itertools.islice(records, CHUNK)):
        missing = next((r for r in chunk if "docno" not in r or "doc_vec" not in r), None)
        if missing is not None:
            raise ValueError(f"each record needs 'docno' and 'doc_vec'; got one with keys {sorted(missing)}")
        docnos = [r["docno"] for r in chunk]
        vecs = [np.asarray(r["doc_vec"], dtype=np.float32) for r in chunk]
        odd = next((i for i, v in enumerate(vecs) if v.ndim != 1 or v.shape != vecs[0].shape), None)
        if odd is not None:
            raise ValueError(
                f"doc_vec of docno {docnos[odd]!r} has shape {vecs[odd].shape}; expected a 1-D vector "
                f"of the same dimension as the others {vecs[0].shape}"
            )
        yield docnos, np.stack(vecs)


def _check_vectors(vectors: Any, docnos: list[Any], dim: int | None) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be a 2-D (documents x dim) array, got shape {vectors.shape}")
    if dim is not None and vectors.shape[1] != dim:
        raise ValueError(
            f"inconsistent vector dimension: docno {docnos[0]!r} has {vectors.shape[1]}, earlier documents {dim}"
        )
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise ValueError(f"vector of docno {docnos[int(np.argmax(bad))]!r} contains NaN or inf")
    return vectors


def _check_docnos(docnos: list[Any]) -> np.ndarray:
    wrong = next((d for d in docnos if not isinstance(d, str)), None)
    if wrong is not None:
        raise ValueError(f"docnos must be str, got {type(wrong).__name__} {wrong!r}")
    array = np.array(docnos, dtype=str)
    unique, counts = np.unique(array, return_counts=True)
    duplicates = unique[counts > 1]
    if len(duplicates):
        raise ValueError(f"docnos must be unique; {len(duplicates)} repeat, e.g. {duplicates[:5].tolist()}")
    return array


def write_payload(out: Path, chunks: Iterable[tuple[list[Any], Any]]) -> tuple[int, int]:
    """Writes vecs.f4 and docnos.npids into ``out``; returns (dim, count)."""
    docnos: list[Any] = []
    dim = None
    with open(out / "vecs.f4", "wb") as fout:
        for chunk_docnos, chunk_vectors in chunks:
            vectors = _check_vectors(chunk_vectors, chunk_docnos, dim)
            dim = vectors.shape[1]
            fout.write(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
            docnos.extend(chunk_docnos)
    if dim is None:
        raise ValueError("cannot build an index from an empty corpus (no documents were given)")
    _check_docnos(docnos)
    write_npids(out / "docnos.npids", docnos)
    return dim, len(docnos)


def check_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of the free-form metadata as stored (a JSON object; ``None`` is ``{}``)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        return json.loads(json.dumps(metadata))
    except (TypeError, ValueError) as err:
        raise ValueError(f"metadata must be JSON-serialisable: {err}") from None

