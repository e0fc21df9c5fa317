"""Approximate search with faiss (HNSW, IVF): build, cache under ``<index>/ann/<name>/``, search.

faiss only chooses candidates: their scores are recomputed exactly and ordered by the sort keys of
:mod:`.exact`, so an ANN run differs from the exact run only by missing documents. That, the atomic
and concurrent-safe cache, and IVF are why this is not pyterrier-dr's ``faiss_hnsw_retriever``
(measured beside it in ``benchmarks/bench_flex.py``; see :class:`~.retriever.DenseRetriever`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyterrier as pt

from ..fs import atomic_dir
from .exact import DocnoOrder, decode_keys, sort_keys
from .layout import CHUNK, json_text

BUILD_PARAMS = {"hnsw": ("M", "ef_construction"), "ivf": ("n_list",)}
"""Parameters that shape the stored structure (the others are search-time)."""
_SHORT = {"ef_construction": "efc", "n_list": "nlist"}  # in ann/<name> directory names
_QUERY_BATCH = 64


def structure_name(backend: str, params: dict[str, int]) -> str:
    """Directory name under ``ann/`` for a backend's build parameters, e.g. ``hnsw_M-32_efc-200``."""
    build = {name: params[name] for name in BUILD_PARAMS[backend]}
    return backend + "_" + "_".join(f"{_SHORT.get(k, k)}-{v}" for k, v in build.items())


def load_or_build(
    directory: Path, backend: str, params: dict[str, int], vectors: np.ndarray, *, verbose: bool
) -> tuple[Any, dict[str, Any]]:
    """The faiss structure stored in ``directory`` and its build record, built there first if missing."""
    import faiss

    if not (directory / "index.faiss").exists():
        build = {name: params[name] for name in BUILD_PARAMS[backend]}
        _build(directory, backend, build, vectors, verbose=verbose)
    info = json.loads((directory / "info.json").read_text())
    return faiss.read_index(str(directory / "index.faiss")), info


def _build(directory: Path, backend: str, params: dict[str, int], vectors: np.ndarray, *, verbose: bool) -> None:
    import faiss

    started = time.perf_counter()
    dim = vectors.shape[1]
    if backend == "hnsw":
        ann = faiss.IndexHNSWFlat(dim, params["M"], faiss.METRIC_INNER_PRODUCT)
        ann.hnsw.efConstruction = params["ef_construction"]
        train_size = 0
    else:
        ann = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, params["n_list"], faiss.METRIC_INNER_PRODUCT)
        train_size = min(len(vectors), 256 * params["n_list"])  # faiss samples 256 points per centroid
        sample = np.random.default_rng(0).choice(len(vectors), size=train_size, replace=False)
        ann.train(np.ascontiguousarray(vectors[np.sort(sample)]))
    for start in pt.tqdm(range(0, len(vectors), CHUNK), desc=f"building {directory.name}", disable=not verbose):
        ann.add(np.ascontiguousarray(vectors[start : start + CHUNK]))
    info = {
        "backend": backend,
        "build_params": params,
        "train_size": train_size,
        "count": len(vectors),
        "build_seconds": round(time.perf_counter() - started, 3),
        "faiss_version": faiss.__version__,
    }
    try:
        with atomic_dir(directory, replace=False) as tmp:
            faiss.write_index(ann, str(tmp / "index.faiss"))
            (tmp / "info.json").write_text(json_text(info))
    except OSError:
        if not (directory / "index.faiss").exists():  # else a concurrent builder published it first
            raise


def search(
    ann: Any,
    backend: str,
    params: dict[str, int],
    queries: np.ndarray,
    k: int,
    vectors: np.ndarray,
    order: DocnoOrder,
    bar: Any,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Up to k (docids, exact scores) per query from the candidates of ``ann``, in ranking order."""
    import faiss

    if backend == "hnsw":
        search_params = faiss.SearchParametersHNSW(efSearch=max(params["ef_search"], k))
    else:
        search_params = faiss.SearchParametersIVF(nprobe=params["n_probe"])
    docids: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for start in range(0, len(queries), _QUERY_BATCH):
        batch = queries[start : start + _QUERY_BATCH]
        _, found = ann.search(batch, k, params=search_params)
        for query, row in zip(batch, found, strict=True):
            cand = row[row >= 0]
            exact = (vectors[cand].astype(np.float64) @ query.astype(np.float64)).astype(np.float32)
            ids, sc = decode_keys(np.sort(sort_keys(exact, order.rank[cand])), order.by_rank)
            docids.append(ids)
            scores.append(sc)
        bar.update(len(batch))
    return docids, scores
