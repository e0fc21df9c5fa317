"""The PyTerrier transformer that ranks a :class:`~.storage.DenseIndex` by inner product."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyterrier as pt

from . import ann, exact

if TYPE_CHECKING:
    from .storage import DenseIndex

DEFAULT_NUM_RESULTS = 1000
"""The default ``num_results`` (as pyterrier-dr's retrievers), and what ``num_results=None`` means for
corpora above ``FULL_RANKING_MAX_DOCS`` (exact method) and for the ANN methods."""
FULL_RANKING_MAX_DOCS = 100_000
"""Corpora up to this size get a full ranking from the exact method when ``num_results=None``."""

#: Retrieval methods and their parameters' defaults.
METHOD_DEFAULTS: dict[str, dict[str, int | None]] = {
    "exact": {},
    "hnsw": {"M": 32, "ef_construction": 200, "ef_search": 128},
    "ivf": {"n_list": None, "n_probe": 16},
}
_BACKEND_DEFAULTS = METHOD_DEFAULTS  # its former name (retrieval methods were "backends")
_OUTPUT_COLUMNS = ["docno", "docid", "score", "rank"]


def resolve_method(method: str | None, backend: str | None) -> str:
    """The retrieval method of ``method=`` or of the deprecated ``backend=`` (a DeprecationWarning:
    "backend" is the encoding backend of :class:`~pyterrier_hybrid.DenseEncoder`); default ``exact``."""
    if backend is not None:
        warnings.warn("the retriever's backend= is now method= (the retrieval method: exact, hnsw or ivf); "
                      "backend= names the encoding backend of DenseEncoder", DeprecationWarning, stacklevel=3)
        if method is not None and method != backend:
            raise ValueError(f"method={method!r} and the deprecated backend={backend!r} disagree; give method= only")
        method = backend
    return "exact" if method is None else method


class DenseRetriever(pt.Transformer):
    """Ranks an index's documents for each query (``qid``, ``query_vec``) by inner product.

    Output: the input columns (``query_vec`` unless ``drop_query_vec``) then ``docno``, ``docid``
    (row in the index), ``score`` (float32) and 0-based ``rank``, score descending, equal scores by
    docno descending (trec_eval's order, see :mod:`.exact`).

    ``num_results`` (default ``DEFAULT_NUM_RESULTS``, 1000, as in pyterrier-dr) documents per query, or
    all documents when the corpus has fewer. ``num_results=None`` asks for the full ranking: every
    document with the exact backend on corpora up to ``FULL_RANKING_MAX_DOCS`` (100,000) documents,
    1000 above that (``num_results=len(index)`` forces a full ranking of any corpus) and with the ANN
    backends. Full rankings are large: on a 13k-document pool, 13k rows per query in each pipeline's
    frame of ``pt.Experiment``.

    Methods (``method=``; ``backend=`` is its deprecated name):

    - ``"exact"``: blocked matrix products over all documents (``batch_size``: documents scored per
      block, not queries or texts), top-k by partition then exact sort.
    - ``"hnsw"`` (``M=32``, ``ef_construction=200``, ``ef_search=128``, raised to ``num_results`` at
      search time) and ``"ivf"`` (``n_list`` = power of two >= sqrt(count), ``n_probe=16``): faiss
      inner-product structures, built on first use and cached under ``<index>/ann/``. They only choose
      candidates: scores are recomputed exactly and ordered as above, so an ANN run differs from the
      exact run only by missing documents. A query may get fewer results when the probed IVF lists
      hold fewer documents.

    Why not pyterrier-dr's ``FlexIndex.np_retriever`` / ``faiss_hnsw_retriever`` on the same files
    (``benchmarks/bench_flex.py``, ``results/flex-avx512-bf16.json``): they order equal scores
    arbitrarily (50.0 % of exactly tied document pairs in trec_eval's order, here all of them), so
    a run's measures would depend on the implementation rather than on the scores; the np retriever is
    slower (16.9 vs 20.2 queries/s, theirs vs ours, exact top 1000 of 200,000); the HNSW retriever
    returns faiss's float32 scores (off by up to 3e-8) where ours rescores exactly. What pyterrier-dr
    does better: its HNSW structure keeps only the graph and reads the vectors from ``vecs.f4``
    (13 MB added at 50,000 x 384; ours 86 MB, the vectors again) and built faster in that run (110 s vs
    483 s, same faiss parameters, at load 16-20 on 2 cores: to re-measure on an idle machine). Sharing
    ``vecs.f4`` as the faiss storage is the part worth taking over.
    """

    def __init__(
        self,
        index: DenseIndex,
        *,
        num_results: int | None = DEFAULT_NUM_RESULTS,
        method: str | None = None,
        batch_size: int = 8192,
        verbose: bool = False,
        drop_query_vec: bool = False,
        backend: str | None = None,
        **params: int,
    ):
        count = len(index)  # fails clearly here if there is no index
        method = resolve_method(method, backend)
        self.index = index
        self.method = method
        self.method_params = _resolve_params(method, params, count)
        self.num_results = _resolve_num_results(num_results, method, count)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.verbose = verbose
        self.drop_query_vec = drop_query_vec

    @property
    def backend(self) -> str:
        """The retrieval method (its former name)."""
        return self.method

    @property
    def backend_params(self) -> dict[str, int]:
        """The method's parameters (their former name)."""
        return self.method_params

    def __repr__(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.method_params.items())
        return f"{self.index!r}.retriever(method={self.method!r}, num_results={self.num_results}{params})"

    def transform_outputs(self, input_columns: list[str]) -> list[str]:
        pt.validate.query_frame(input_columns, extra_columns=["query_vec"])
        kept = [c for c in input_columns if not (self.drop_query_vec and c == "query_vec")]
        return kept + _OUTPUT_COLUMNS

    def fuse_rank_cutoff(self, k: int) -> DenseRetriever | None:
        """Lets ``(retriever % k).compile()`` retrieve only k documents (exact method only: ANN
        candidates depend on ``num_results``)."""
        if self.method != "exact":
            return None
        if k >= self.num_results:
            return self
        return DenseRetriever(
            self.index, num_results=k, batch_size=self.batch_size, verbose=self.verbose,
            drop_query_vec=self.drop_query_vec,
        )

    def ann_info(self) -> dict[str, Any] | None:
        """Build record of the faiss structure (parameters, build_seconds, faiss version), building or
        loading it if needed; ``None`` for the exact method."""
        if self.method == "exact":
            return None
        return dict(self.index.ann_index(self.method, self.method_params, verbose=self.verbose)[1])

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        pt.validate.query_frame(inp, extra_columns=["query_vec"])
        inp = inp.reset_index(drop=True)
        if len(inp) == 0:
            return self._frame(inp, [], [])
        queries = self._query_matrix(inp)
        with pt.tqdm(total=len(queries), unit="query", desc=f"DenseRetriever[{self.method}]", disable=not self.verbose) as bar:
            docids, scores = self._search(queries, bar)
        return self._frame(inp, docids, scores)

    def _search(self, queries: np.ndarray, bar: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
        order = self.index.docno_order()
        if self.method == "exact":
            return exact.search(queries, self.index.vectors(), order, self.num_results, self.batch_size, bar)
        structure, _ = self.index.ann_index(self.method, self.method_params, verbose=self.verbose)
        return ann.search(
            structure, self.method, self.method_params, queries, self.num_results, self.index.vectors(), order, bar
        )

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


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _resolve_num_results(num_results: int | None, method: str, count: int) -> int:
    if num_results is None:
        full = method == "exact" and count <= FULL_RANKING_MAX_DOCS
        return count if full else min(count, DEFAULT_NUM_RESULTS)
    return min(count, _positive_int("num_results", num_results))


def _resolve_params(method: str, params: dict[str, Any], count: int) -> dict[str, int]:
    if method not in METHOD_DEFAULTS:
        raise ValueError(f"unknown backend {method!r} (retrieval method=); valid: {sorted(METHOD_DEFAULTS)}")
    defaults = METHOD_DEFAULTS[method]
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for backend {method!r} (retrieval method=); "
                         f"valid: {sorted(defaults) or 'none'}")
    resolved = {**defaults, **params}
    if method == "ivf" and resolved["n_list"] is None:
        resolved["n_list"] = min(count, max(4, 1 << math.ceil(math.log2(math.sqrt(count)))))
    resolved = {name: _positive_int(name, value) for name, value in resolved.items()}
    if method == "ivf" and resolved["n_list"] > count:
        raise ValueError(f"n_list={resolved['n_list']} exceeds the number of documents ({count})")
    return resolved
