"""Dense vector index (a PyTerrier artifact) and its retriever (a PyTerrier transformer).

On-disk layout of a :class:`DenseIndex` directory::

    pt_meta.json   {"type": "dense_index", "format": "hybrid_flat", "package_hint": "pyterrier-hybrid",
                    "format_version": 1, "dim": d, "count": n, "metadata": {...free-form...}}
    docnos.npy     unicode array (n,), docnos in indexing order (unique)
    vecs.f4        raw little-endian float32 matrix (n, d); row i is the vector of docnos[i]
                   (the same vector file as pyterrier-dr's FlexIndex)
    ann/<name>/    faiss structures built on first use: index.faiss + info.json (build parameters,
                   build_seconds, faiss version), e.g. ann/hnsw_M-32_efc-200, ann/ivf_nlist-64

Scores are inner products computed in float64 and rounded to float32, so a document's score does not
depend on how queries and documents are batched. Equal scores are ordered by docno descending, the
order trec_eval / pytrec_eval (and so ir_measures) use, so a run evaluates identically whatever order
its ties are listed in.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyterrier as pt

from .fs import atomic_dir

FULL_RANKING_MAX_DOCS = 100_000
"""Corpora up to this size get a full ranking from the exact backend when ``num_results=None``."""
DEFAULT_NUM_RESULTS = 1000
"""``num_results=None`` for larger corpora (exact backend) and for the ANN backends."""

_FORMAT_VERSION = 1
_CHUNK = 4096  # documents per write / faiss add
_KEY_BUDGET = 1 << 24  # int64 sort keys held per query batch (128 MiB)
_ANN_QUERY_BATCH = 64
_BACKEND_DEFAULTS: dict[str, dict[str, int | None]] = {
    "exact": {},
    "hnsw": {"M": 32, "ef_construction": 200, "ef_search": 128},
    "ivf": {"n_list": None, "n_probe": 16},
}
_BUILD_PARAMS = {"hnsw": ("M", "ef_construction"), "ivf": ("n_list",)}
_SHORT = {"ef_construction": "efc", "n_list": "nlist"}  # in ann/<name> directory names
_OUTPUT_COLUMNS = ["docno", "docid", "score", "rank"]


class DenseIndex(pt.Artifact):
    """A flat store of unique docnos and float32 vectors, with exact and faiss (HNSW / IVF) retrieval.

    ``DenseIndex(path)`` does no I/O; reading a path that holds no dense index raises a
    ``FileNotFoundError`` (nothing there) or ``ValueError`` (something else there).
    """

    ARTIFACT_TYPE = "dense_index"
    ARTIFACT_FORMAT = "hybrid_flat"
    ARTIFACT_PACKAGE_HINT = "pyterrier-hybrid"

    def __init__(self, path: str | os.PathLike[str]):
        super().__init__(path)
        self._reset()

    def _reset(self) -> None:
        self._meta: dict[str, Any] | None = None
        self._docnos: np.ndarray | None = None
        self._vecs: np.ndarray | None = None
        self._tiebreak: tuple[np.ndarray, np.ndarray] | None = None
        self._ann: dict[str, tuple[Any, dict[str, Any]]] = {}

    def __repr__(self) -> str:
        return f"DenseIndex({str(self.path)!r})"

    # -- building ---------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        path: str | os.PathLike[str],
        docnos: Sequence[str] | np.ndarray,
        vectors: np.ndarray,
        *,
        metadata: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> DenseIndex:
        """Write an index from ``docnos`` (n unique str) and ``vectors`` (n x dim), atomically."""
        if len(docnos) != len(vectors):
            raise ValueError(f"got {len(docnos)} docnos but {len(vectors)} vectors; they must pair up")
        chunks = (
            (list(docnos[start : start + _CHUNK]), vectors[start : start + _CHUNK])
            for start in range(0, len(vectors), _CHUNK)
        )
        return cls(path)._write(chunks, metadata=metadata, mode="overwrite" if overwrite else "create")

    def indexer(self, *, mode: str = "create", metadata: dict[str, Any] | None = None) -> DenseIndexer:
        """A ``pt.Indexer`` consuming dicts with ``docno`` and ``doc_vec`` (e.g. ``doc_encoder >> indexer``).

        ``mode="create"`` fails if the index exists; ``"overwrite"`` replaces an existing dense index
        (never any other directory). ``metadata`` (JSON-serialisable) is stored in ``pt_meta.json``.
        """
        return DenseIndexer(self, mode=mode, metadata=metadata)

    def _write(
        self, chunks: Iterable[tuple[list[Any], Any]], *, metadata: dict[str, Any] | None, mode: str
    ) -> DenseIndex:
        metadata = _check_metadata(metadata)
        replace = _check_target(self.path, mode)
        with atomic_dir(self.path, replace=replace) as tmp:
            dim, count = _write_payload(tmp, chunks)
            meta = {
                "type": self.ARTIFACT_TYPE,
                "format": self.ARTIFACT_FORMAT,
                "package_hint": self.ARTIFACT_PACKAGE_HINT,
                "format_version": _FORMAT_VERSION,
                "dim": dim,
                "count": count,
                "metadata": metadata,
            }
            (tmp / "pt_meta.json").write_text(_json_text(meta))
        self._reset()
        return self

    # -- reading ----------------------------------------------------------------------------------

    def built(self) -> bool:
        """Whether a dense index exists at this path."""
        return _is_dense_index(self.path)

    def _read_meta(self) -> dict[str, Any]:
        if self._meta is None:
            self._meta = _load_meta(self.path)
        return self._meta

    def __len__(self) -> int:
        return int(self._read_meta()["count"])

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self._read_meta()["dim"])

    @property
    def metadata(self) -> dict[str, Any]:
        """The free-form metadata given at build time (a copy)."""
        return json.loads(json.dumps(self._read_meta()["metadata"]))

    def docnos(self) -> np.ndarray:
        """Docnos (unicode array, memory-mapped, read-only); row i matches ``vectors()[i]``."""
        if self._docnos is None:
            count = len(self)
            docnos = np.load(self.path / "docnos.npy", mmap_mode="r", allow_pickle=False)
            if docnos.shape != (count,):
                raise ValueError(f"{self.path}/docnos.npy holds {docnos.shape} docnos, pt_meta.json says {count}")
            self._docnos = docnos
        return self._docnos

    def vectors(self) -> np.ndarray:
        """Document vectors (float32, count x dim, memory-mapped, read-only)."""
        if self._vecs is None:
            shape = (len(self), self.dim)
            path = self.path / "vecs.f4"
            if path.stat().st_size != shape[0] * shape[1] * 4:
                raise ValueError(f"{path} has {path.stat().st_size} bytes, expected {shape} float32 (corrupt index?)")
            self._vecs = np.memmap(path, dtype="<f4", mode="r", shape=shape)
        return self._vecs

    def _ranks(self) -> tuple[np.ndarray, np.ndarray]:
        """(rank of each docid in docno-descending order, docids in that order)."""
        if self._tiebreak is None:
            by_rank = np.argsort(self.docnos())[::-1].astype(np.int64)
            ranks = np.empty_like(by_rank)
            ranks[by_rank] = np.arange(len(by_rank))
            self._tiebreak = ranks, by_rank
        return self._tiebreak

    # -- retrieval --------------------------------------------------------------------------------

    def retriever(
        self,
        *,
        num_results: int | None = None,
        backend: str = "exact",
        batch_size: int = 8192,
        verbose: bool = False,
        drop_query_vec: bool = False,
        **backend_params: int,
    ) -> DenseRetriever:
        """A retriever over this index; see :class:`DenseRetriever`."""
        return DenseRetriever(
            self,
            num_results=num_results,
            backend=backend,
            batch_size=batch_size,
            verbose=verbose,
            drop_query_vec=drop_query_vec,
            **backend_params,
        )

    def _ann_index(self, backend: str, params: dict[str, int], *, verbose: bool) -> tuple[Any, dict[str, Any]]:
        """The faiss structure for ``backend`` and its build record, built and cached on first use."""
        import faiss

        build = {name: params[name] for name in _BUILD_PARAMS[backend]}
        name = backend + "_" + "_".join(f"{_SHORT.get(k, k)}-{v}" for k, v in build.items())
        if name not in self._ann:
            directory = self.path / "ann" / name
            if not (directory / "index.faiss").exists():
                _build_ann(directory, backend, build, self.vectors(), verbose=verbose)
            info = json.loads((directory / "info.json").read_text())
            self._ann[name] = faiss.read_index(str(directory / "index.faiss")), info
        return self._ann[name]



class DenseIndexer(pt.Indexer):
    """Writes a :class:`DenseIndex` from records with ``docno`` (str) and ``doc_vec`` (1-D vector).

    The index is built in a temporary sibling directory and renamed into place, so a failure
    (bad input, an upstream error) leaves the path as it was.
    """

    def __init__(self, index: DenseIndex, *, mode: str = "create", metadata: dict[str, Any] | None = None):
        if mode not in ("create", "overwrite"):
            raise ValueError(f"mode must be 'create' or 'overwrite', got {mode!r}")
        self._index = index
        self.mode = mode
        self.metadata = metadata

    def __repr__(self) -> str:
        return f"{self._index!r}.indexer(mode={self.mode!r})"

    def index_inputs(self) -> list[list[str]]:
        return [["docno", "doc_vec"]]

    def index(self, inp: Iterable[dict[str, Any]] | pd.DataFrame) -> DenseIndex:
        """Consume the records and return the built index."""
        if isinstance(inp, pd.DataFrame):
            inp = inp.to_dict(orient="records")
        return self._index._write(_record_chunks(inp), metadata=self.metadata, mode=self.mode)


class DenseRetriever(pt.Transformer):
    """Ranks an index's documents for each query (``qid``, ``query_vec``) by inner product.

    Output: the input columns (``query_vec`` unless ``drop_query_vec``) then ``docno``, ``docid``
    (row in the index), ``score`` (float32) and 0-based ``rank``, score descending, equal scores by
    docno descending (trec_eval's order).

    Backends:

    - ``"exact"``: blocked matrix products over all documents (``batch_size`` documents per block),
      top-k by partition then exact sort. ``num_results=None`` gives the full ranking of corpora up to
      ``FULL_RANKING_MAX_DOCS`` (100,000) documents and ``DEFAULT_NUM_RESULTS`` (1000) above that.
    - ``"hnsw"`` (``M=32``, ``ef_construction=200``, ``ef_search=128``, raised to ``num_results`` at
      search time) and ``"ivf"`` (``n_list`` = power of two >= sqrt(count), ``n_probe=16``): faiss
      inner-product structures, built on first use and cached under ``<index>/ann/``. They only choose
      candidates: scores are recomputed exactly and ordered as above, so an ANN run differs from the
      exact run only by missing documents. ``num_results=None`` means 1000; a query may get fewer
      results when the probed IVF lists hold fewer documents.
    """

    def __init__(
        self,
        index: DenseIndex,
        *,
        num_results: int | None = None,
        backend: str = "exact",
        batch_size: int = 8192,
        verbose: bool = False,
        drop_query_vec: bool = False,
        **backend_params: int,
    ):
        count = len(index)  # fails clearly here if there is no index
        self.index = index
        self.backend = backend
        self.backend_params = _resolve_params(backend, backend_params, count)
        self.num_results = _resolve_num_results(num_results, backend, count)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.verbose = verbose
        self.drop_query_vec = drop_query_vec

    def __repr__(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.backend_params.items())
        return f"{self.index!r}.retriever(backend={self.backend!r}, num_results={self.num_results}{params})"

    def transform_outputs(self, input_columns: list[str]) -> list[str]:
        pt.validate.query_frame(input_columns, extra_columns=["query_vec"])
        kept = [c for c in input_columns if not (self.drop_query_vec and c == "query_vec")]
        return kept + _OUTPUT_COLUMNS

    def fuse_rank_cutoff(self, k: int) -> DenseRetriever | None:
        """Lets ``(retriever % k).compile()`` retrieve only k documents (exact backend only: ANN
        candidates depend on ``num_results``)."""
        if self.backend != "exact":
            return None
        if k >= self.num_results:
            return self
        return DenseRetriever(
            self.index, num_results=k, batch_size=self.batch_size, verbose=self.verbose,
            drop_query_vec=self.drop_query_vec,
        )

    def ann_info(self) -> dict[str, Any] | None:
        """Build record of the faiss structure (parameters, build_seconds, faiss version), building or
        loading it if needed; ``None`` for the exact backend."""
        if self.backend == "exact":
            return None
        return dict(self.index._ann_index(self.backend, self.backend_params, verbose=self.verbose)[1])

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        pt.validate.query_frame(inp, extra_columns=["query_vec"])
        inp = inp.reset_index(drop=True)
        if len(inp) == 0:
            return self._frame(inp, [], [])
        queries = self._query_matrix(inp)
        search = self._exact if self.backend == "exact" else self._ann
        with pt.tqdm(total=len(queries), unit="query", desc=f"DenseRetriever[{self.backend}]", disable=not self.verbose) as bar:
            docids, scores = search(queries, bar)
        return self._frame(inp, docids, scores)

    def _query_matrix(self, inp: pd.DataFrame) -> np.ndarray:
        rows = [np.asarray(v, dtype=np.float32) for v in inp["query_vec"]]
        shapes = {row.shape for row in rows}
        if shapes != {(self.index.dim,)}:
            raise ValueError(
                f"query_vec must be 1-D vectors of the index dimension {self.index.dim}; got shapes {sorted(shapes)}"
            )
        queries = np.stack(rows)
        bad = ~np.isfinite(queries).all(axis=1)
        if bad.any():
            raise ValueError(f"query_vec of qid {inp['qid'].iloc[int(np.argmax(bad))]!r} contains NaN or inf")
        return queries

    def _exact(self, queries: np.ndarray, bar: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        ranks, by_rank = self.index._ranks()
        vectors = self.index.vectors()
        step = max(1, _KEY_BUDGET // (self.num_results + self.batch_size))
        docids: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        for start in range(0, len(queries), step):
            keys = _exact_top_keys(queries[start : start + step], vectors, ranks, self.num_results, self.batch_size)
            batch_ids, batch_scores = _decode_keys(keys, by_rank)
            docids.extend(batch_ids)
            scores.extend(batch_scores)
            bar.update(len(keys))
        return docids, scores

    def _ann(self, queries: np.ndarray, bar: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        import faiss

        ann, _ = self.index._ann_index(self.backend, self.backend_params, verbose=self.verbose)
        if self.backend == "hnsw":
            ef_search = max(self.backend_params["ef_search"], self.num_results)
            params = faiss.SearchParametersHNSW(efSearch=ef_search)
        else:
            params = faiss.SearchParametersIVF(nprobe=self.backend_params["n_probe"])
        ranks, by_rank = self.index._ranks()
        vectors = self.index.vectors()
        docids: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        for start in range(0, len(queries), _ANN_QUERY_BATCH):
            batch = queries[start : start + _ANN_QUERY_BATCH]
            _, found = ann.search(batch, self.num_results, params=params)
            for query, row in zip(batch, found, strict=True):
                cand = row[row >= 0]
                exact = (vectors[cand].astype(np.float64) @ query.astype(np.float64)).astype(np.float32)
                ids, sc = _decode_keys(np.sort(_sort_keys(exact, ranks[cand])), by_rank)
                docids.append(ids)
                scores.append(sc)
            bar.update(len(batch))
        return docids, scores

    def _frame(self, inp: pd.DataFrame, docids: list[np.ndarray], scores: list[np.ndarray]) -> pd.DataFrame:
        if self.drop_query_vec:
            inp = inp.drop(columns="query_vec")
        lengths = np.array([len(d) for d in docids], dtype=np.int64)
        ids = np.concatenate([np.empty(0, np.int64), *docids])
        out = inp.iloc[np.repeat(np.arange(len(inp)), lengths)].reset_index(drop=True)
        return out.assign(
            docno=self.index.docnos()[ids].astype(object),
            docid=ids,
            score=np.concatenate([np.empty(0, np.float32), *scores]),
            rank=np.arange(len(ids)) - np.repeat(np.cumsum(lengths) - lengths, lengths),
        )


# -- ranking helpers ------------------------------------------------------------------------------


def _sort_keys(scores: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """int64 keys whose ascending order is score descending, then docno descending.

    High 32 bits: the float32 score mapped to an order-preserving int32, negated; low 32 bits: the
    document's rank in docno-descending order. Keys are decoded losslessly by :func:`_decode_keys`.
    """
    bits = (scores + np.float32(0)).view(np.int32)  # + 0 turns -0.0 into +0.0
    ascending = bits ^ ((bits >> 31) & 0x7FFFFFFF)
    return ((~ascending).astype(np.int64) << 32) | ranks


def _decode_keys(keys: np.ndarray, by_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ascending = (~(keys >> 32)).astype(np.int32)
    scores = (ascending ^ ((ascending >> 31) & 0x7FFFFFFF)).view(np.float32)
    return by_rank[keys & 0xFFFFFFFF], scores


def _exact_top_keys(queries: np.ndarray, vectors: np.ndarray, ranks: np.ndarray, k: int, block: int) -> np.ndarray:
    """Sorted keys of the top k documents per query, scoring ``block`` documents at a time."""
    queries64 = queries.astype(np.float64)
    kept = np.empty((len(queries), 0), np.int64)
    for start in range(0, len(vectors), block):
        docs = vectors[start : start + block].astype(np.float64)
        scores = (queries64 @ docs.T).astype(np.float32)
        kept = np.concatenate([kept, _sort_keys(scores, ranks[start : start + block])], axis=1)
        if kept.shape[1] > k:
            kept = np.partition(kept, k - 1, axis=1)[:, :k]
    return np.sort(kept, axis=1)


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _resolve_num_results(num_results: int | None, backend: str, count: int) -> int:
    if num_results is None:
        full = backend == "exact" and count <= FULL_RANKING_MAX_DOCS
        return count if full else min(count, DEFAULT_NUM_RESULTS)
    return min(count, _positive_int("num_results", num_results))


def _resolve_params(backend: str, params: dict[str, Any], count: int) -> dict[str, int]:
    if backend not in _BACKEND_DEFAULTS:
        raise ValueError(f"unknown backend {backend!r}; valid: {sorted(_BACKEND_DEFAULTS)}")
    defaults = _BACKEND_DEFAULTS[backend]
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for backend {backend!r}; valid: {sorted(defaults) or 'none'}")
    resolved = {**defaults, **params}
    if backend == "ivf" and resolved["n_list"] is None:
        resolved["n_list"] = min(count, max(4, 1 << math.ceil(math.log2(math.sqrt(count)))))
    resolved = {name: _positive_int(name, value) for name, value in resolved.items()}
    if backend == "ivf" and resolved["n_list"] > count:
        raise ValueError(f"n_list={resolved['n_list']} exceeds the number of documents ({count})")
    return resolved


def _build_ann(directory: Path, backend: str, params: dict[str, int], vectors: np.ndarray, *, verbose: bool) -> None:
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
    for start in pt.tqdm(range(0, len(vectors), _CHUNK), desc=f"building {directory.name}", disable=not verbose):
        ann.add(np.ascontiguousarray(vectors[start : start + _CHUNK]))
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
            (tmp / "info.json").write_text(_json_text(info))
    except OSError:
        if not (directory / "index.faiss").exists():  # else a concurrent builder published it first
            raise


# -- writing helpers ------------------------------------------------------------------------------


def _record_chunks(records: Iterable[dict[str, Any]]) -> Iterator[tuple[list[Any], np.ndarray]]:
    """(docnos, vector matrix) chunks from ``{'docno', 'doc_vec'}`` records."""
    records = iter(records)
    while chunk := list(itertools.islice(records, _CHUNK)):
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


def _write_payload(out: Path, chunks: Iterable[tuple[list[Any], Any]]) -> tuple[int, int]:
    """Writes vecs.f4 and docnos.npy into ``out``; returns (dim, count)."""
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
    np.save(out / "docnos.npy", _check_docnos(docnos), allow_pickle=False)
    return dim, len(docnos)


def _check_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        return json.loads(json.dumps(metadata))
    except (TypeError, ValueError) as err:
        raise ValueError(f"metadata must be JSON-serialisable: {err}") from None


def _check_target(path: Path, mode: str) -> bool:
    """Whether ``path`` must be replaced; raises if ``mode`` forbids writing there."""
    if mode not in ("create", "overwrite"):
        raise ValueError(f"mode must be 'create' or 'overwrite', got {mode!r}")
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return False  # renaming onto an empty directory replaces it
    if mode == "create":
        raise FileExistsError(
            f"{path} already exists; use indexer(mode='overwrite') or build(..., overwrite=True) to replace it"
        )
    if not _is_dense_index(path):
        raise ValueError(f"refusing to overwrite {path}: it is not a pyterrier-hybrid dense index")
    return True


def _load_meta(path: Path) -> dict[str, Any]:
    meta_path = path / "pt_meta.json"
    if not meta_path.is_file():
        why = "it has no pt_meta.json" if path.is_dir() else "the path does not exist"
        raise FileNotFoundError(
            f"no dense index at {path}: {why}; build one with DenseIndex.build(...) or index.indexer().index(...)"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{meta_path} is not valid JSON: {err}") from None
    found = (meta.get("type"), meta.get("format")) if isinstance(meta, dict) else (None, None)
    if found != (DenseIndex.ARTIFACT_TYPE, DenseIndex.ARTIFACT_FORMAT):
        raise ValueError(
            f"{path} is not a pyterrier-hybrid dense index: pt_meta.json has type/format {found}, "
            f"expected {(DenseIndex.ARTIFACT_TYPE, DenseIndex.ARTIFACT_FORMAT)}"
        )
    return meta


def _is_dense_index(path: Path) -> bool:
    try:
        _load_meta(path)
    except (OSError, ValueError):
        return False
    return True


def _json_text(value: dict[str, Any]) -> str:
    """The on-disk form of ``pt_meta.json`` and ``ann/*/info.json``."""
    return json.dumps(value, indent=2, sort_keys=True) + "\n"
