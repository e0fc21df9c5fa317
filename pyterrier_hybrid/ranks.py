"""Rank kernels: measures of full rankings from the ranks of relevant docs, equal to pytrec_eval's.

The study never materialises full runs: for a block of queries it computes a dense score
matrix against a corpus and keeps only the 1-based ranks of the relevant docs
(:func:`relevant_ranks`), from which :func:`rank_metrics` derives AP, R@k, nDCG@k, RR and
RankDistance exactly as pytrec_eval would on the full run (binary relevance, level 1).

Tie rule (trec_eval's, confirmed empirically against pytrec_eval): docs are ordered by score
descending, and docs with equal scores by docno descending (code point order, which is the
byte order of strcmp on UTF-8), whatever the order of the rows in the run. It is also the
order of :class:`~pyterrier_hybrid.index.DenseRetriever` runs (:mod:`pyterrier_hybrid.index.exact`).

Score contract: pytrec_eval receives each score as a C double. Converting float32 (or any
float) to float64 is exact and order-preserving, so ranks computed on a block equal
pytrec_eval's on a run whose score column holds the same values (float32 or their float64
upcast). A run whose scores were computed differently (another dtype or summation order,
rounded text) can order near-ties differently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from ir_measures.measures import Measure

__all__ = [
    "DEFAULT_MEASURES",
    "SUPPORTED_MEASURES",
    "mean",
    "measure_fn",
    "rank_metrics",
    "relevant_ranks",
]


# ---------------------------------------------------------------- ranks of relevant docs


def relevant_ranks(scores: np.ndarray, docnos: ArrayLike, rel_cols: Sequence[ArrayLike]) -> list[np.ndarray]:
    """1-based ranks of each query's relevant docs in the full ranking of a score block.

    ``scores`` is ``[n_queries, n_docs]`` (any float dtype, no NaN), ``docnos`` the ``n_docs``
    unique doc ids of the columns, ``rel_cols[i]`` the column indexes of query i's relevant
    docs present in the corpus. Ranks follow pytrec_eval: score descending, then docno
    descending. Returned arrays are int64, aligned with ``rel_cols``.
    """
    scores = _check_scores(scores)
    n_queries, n_docs = scores.shape
    docnos = _check_docnos(docnos, n_docs)
    if len(rel_cols) != n_queries:
        raise ValueError(f"rel_cols has {len(rel_cols)} entries but scores has {n_queries} rows (queries)")
    return [
        _row_ranks(row, docnos, _check_columns(cols, n_docs, i))
        for i, (row, cols) in enumerate(zip(scores, rel_cols, strict=True))
    ]


def _row_ranks(row: np.ndarray, docnos: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Ranks of ``cols`` in one score row; equal scores are resolved only where they occur."""
    target = row[cols][:, None]
    ranks = 1 + np.count_nonzero(row > target, axis=1).astype(np.int64)
    equal = row == target
    for i in np.flatnonzero(np.count_nonzero(equal, axis=1) > 1):
        ranks[i] += np.count_nonzero(docnos[equal[i]] > docnos[cols[i]])
    return ranks


def _check_scores(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D [n_queries, n_docs], got shape {scores.shape}")
    if scores.dtype.kind != "f":
        raise TypeError(f"scores must have a float dtype (float32 or float64), got {scores.dtype}")
    if np.isnan(scores).any():
        raise ValueError(
            "scores contain NaN; pytrec_eval's order is undefined for NaN, expected finite or inf"
        )
    return scores


def _check_docnos(docnos: ArrayLike, n_docs: int) -> np.ndarray:
    docnos = np.asarray(docnos)
    if docnos.shape != (n_docs,):
        raise ValueError(
            f"docnos must be 1-D with one id per score column ({n_docs}), got shape {docnos.shape}"
        )
    if docnos.dtype.kind not in "UO":
        raise TypeError(f"docnos must be strings, got dtype {docnos.dtype}")
    return docnos


def _check_columns(cols: ArrayLike, n_docs: int, query: int) -> np.ndarray:
    cols = np.asarray(cols)
    if cols.size == 0:
        return np.empty(0, dtype=np.intp)
    if cols.ndim != 1 or cols.dtype.kind not in "iu":
        raise ValueError(
            f"rel_cols[{query}] must be a 1-D integer array, got {cols.dtype} of shape {cols.shape}"
        )
    if cols.min() < 0 or cols.max() >= n_docs:
        raise ValueError(f"rel_cols[{query}] has column indexes outside [0, {n_docs})")
    if np.unique(cols).size != cols.size:
        raise ValueError(f"rel_cols[{query}] repeats a column index")
    return cols


# ---------------------------------------------------------------- measures from ranks


class _Ranks(NamedTuple):
    """Relevant ranks of all queries, flattened and ascending within each query."""

    query: np.ndarray  # query index of each rank
    rank: np.ndarray  # float64 1-based rank
    position: np.ndarray  # float64 1-based position among the query's retrieved relevant docs
    first: np.ndarray  # flat index of each query's best rank (meaningful where size > 0)
    size: np.ndarray  # relevant docs ranked, per query
    n_relevant: np.ndarray  # relevant docs in qrels, per query
    depth: np.ndarray | None = None  # docs ranked, per query (None: unknown)


def _flatten(ranks: Sequence[ArrayLike], n_relevant: ArrayLike, depth: ArrayLike | None = None) -> _Ranks:
    n_queries = len(ranks)
    n_rel = np.asarray(n_relevant)
    if n_rel.ndim == 0:
        n_rel = np.full(n_queries, n_rel)
    if n_rel.shape != (n_queries,) or n_rel.dtype.kind not in "iu":
        raise ValueError(
            f"n_relevant must be an int or {n_queries} ints (one per query), got {n_rel.dtype} {n_rel.shape}"
        )
    arrays = [np.asarray(r, dtype=np.int64).ravel() for r in ranks]
    size = np.array([a.size for a in arrays], dtype=np.int64)
    if (size > n_rel).any():
        q = int(np.flatnonzero(size > n_rel)[0])
        raise ValueError(f"query {q} has {size[q]} relevant ranks but n_relevant={n_rel[q]}")
    query = np.repeat(np.arange(n_queries), size)
    flat = np.concatenate(arrays) if arrays else np.empty(0, dtype=np.int64)
    if (flat < 1).any():
        raise ValueError("ranks must be 1-based (>= 1)")
    order = np.lexsort((flat, query))
    flat = flat[order]
    first = np.cumsum(size) - size
    position = np.arange(flat.size) - np.repeat(first, size) + 1
    if (np.diff(flat)[position[1:] > 1] == 0).any():
        raise ValueError("a query has two relevant docs at the same rank")
    if depth is not None:
        depth = np.broadcast_to(np.asarray(depth, dtype=np.float64), (n_queries,))
        if flat.size and (flat > np.repeat(depth, size)).any():
            raise ValueError("a relevant rank is deeper than the ranking's depth")
    return _Ranks(query, flat.astype(np.float64), position.astype(np.float64), first, size, n_rel, depth)


def _per_query(r: _Ranks, weights: np.ndarray) -> np.ndarray:
    """Sum of weights per query, accumulated in rank order like trec_eval."""
    # float even when no query ranks anything relevant (numpy's bincount of nothing is int64)
    return np.bincount(r.query, weights=weights, minlength=r.size.size).astype(np.float64, copy=False)


def _over_relevant(r: _Ranks, total: np.ndarray) -> np.ndarray:
    return np.divide(total, r.n_relevant, out=np.zeros_like(total), where=r.n_relevant > 0)


def _ap(r: _Ranks) -> np.ndarray:
    return _over_relevant(r, _per_query(r, r.position / r.rank))


def _ap_cut(r: _Ranks, cutoff: int) -> np.ndarray:
    """AP of the ranking cut at ``cutoff`` (trec_eval ``map_cut``): relevant docs ranked deeper
    add nothing, the denominator stays all relevant docs."""
    return _over_relevant(r, _per_query(r, np.where(r.rank <= cutoff, r.position / r.rank, 0.0)))


def _rr(r: _Ranks) -> np.ndarray:
    rr = np.zeros(r.size.size)
    hit = r.size > 0
    rr[hit] = 1.0 / r.rank[r.first[hit]]
    return rr


def _recall(r: _Ranks, cutoff: int) -> np.ndarray:
    return _over_relevant(r, _per_query(r, (r.rank <= cutoff).astype(np.float64)))


def _ndcg(r: _Ranks, cutoff: int) -> np.ndarray:
    # trec_eval: gain / log2(rank + 1), binary gains; ideal ranks all qrels-relevant docs first
    discount = np.array([0.0] + [1.0 / math.log2(k + 1) for k in range(1, cutoff + 1)])
    dcg = _per_query(r, discount[np.where(r.rank <= cutoff, r.rank, 0).astype(np.int64)])
    ideal = np.cumsum(discount)[np.minimum(r.n_relevant, cutoff)]
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def _rank_distance(r: _Ranks) -> np.ndarray:
    """The RankDistance rule (see :class:`pyterrier_hybrid.measures.RankDistance`): over a query's
    relevant docs in the qrels (at least 2, else NaN), largest minus smallest rank, a relevant doc
    not ranked counting at depth + 1. Without ``depth`` such a query is NaN (nowhere to put it)."""
    distance = np.full(r.size.size, np.nan)
    hit = r.size > 0
    lo = np.zeros(r.size.size)
    hi = np.zeros(r.size.size)
    lo[hit] = r.rank[r.first[hit]]
    hi[hit] = r.rank[r.first[hit] + r.size[hit] - 1]
    complete = (r.n_relevant >= 2) & (r.size == r.n_relevant)
    distance[complete] = hi[complete] - lo[complete]
    if r.depth is not None:
        missing = (r.n_relevant >= 2) & (r.size < r.n_relevant)
        below = r.depth[missing] + 1
        distance[missing] = below - np.where(hit[missing], lo[missing], below)
    return distance


_FIXED: dict[str, Callable[[_Ranks], np.ndarray]] = {"AP": _ap, "RR": _rr, "RankDistance": _rank_distance}
_AT_CUTOFF: dict[str, Callable[[_Ranks, int], np.ndarray]] = {"AP": _ap_cut, "R": _recall, "nDCG": _ndcg}
_CUTOFF_NAME = re.compile(r"^(\w+)@([1-9][0-9]*)$")

SUPPORTED_MEASURES: tuple[str, ...] = (*_FIXED, *(f"{name}@k" for name in _AT_CUTOFF))
"""Measures computable from relevant ranks, as ir_measures' ``str()`` (k: any cutoff >= 1)."""

DEFAULT_MEASURES: tuple[str, ...] = ("AP", "R@1", "R@10", "nDCG@10", "RR", "RankDistance")


def _kernel(measure: Measure | str) -> tuple[str, Callable[[_Ranks], np.ndarray]]:
    name = str(measure)
    if name in _FIXED:
        return name, _FIXED[name]
    match = _CUTOFF_NAME.match(name)
    if match and match[1] in _AT_CUTOFF:
        cutoff = int(match[2])
        return name, lambda r: _AT_CUTOFF[match[1]](r, cutoff)
    raise ValueError(
        f"measure {name!r} cannot be computed from relevant ranks; supported: {', '.join(SUPPORTED_MEASURES)} "
        "(default parameters, binary relevance)"
    )


def measure_fn(measure: Measure | str) -> Callable[..., np.ndarray]:
    """Per-query function ``(ranks, n_relevant, depth=None) -> values`` for an ir_measures measure or
    its str (``depth``: docs ranked per query, used by RankDistance; see :func:`rank_metrics`).

    Raises ValueError listing :data:`SUPPORTED_MEASURES` for any other measure or parameters.
    """
    _, kernel = _kernel(measure)
    return lambda ranks, n_relevant, depth=None: kernel(_flatten(ranks, n_relevant, depth))


def rank_metrics(
    ranks: Sequence[ArrayLike],
    n_relevant: ArrayLike,
    measures: Iterable[Measure | str] = DEFAULT_MEASURES,
    *,
    depth: int | ArrayLike | None = None,
) -> dict[str, np.ndarray]:
    """Per-query measures from the relevant ranks of a full ranking, keyed by ir_measures' str().

    ``ranks[i]`` are query i's 1-based relevant ranks (from :func:`relevant_ranks`);
    ``n_relevant`` (int or one per query) counts its relevant docs in the qrels, so relevant
    docs absent from the corpus count as not retrieved. AP, R@k, nDCG@k and RR equal
    pytrec_eval's (0 when nothing relevant is ranked). RankDistance is max - min rank over the
    ``n_relevant`` relevant docs, those not ranked counting at ``depth`` + 1 (``depth``: docs in the
    ranking, an int or one per query; a full ranking's depth is the corpus size); NaN with fewer
    than 2 relevant docs, or when some are not ranked and ``depth`` is None.
    """
    flat = _flatten(ranks, n_relevant, depth)
    return {name: kernel(flat) for name, kernel in map(_kernel, measures)}


def mean(metrics: Mapping[str, ArrayLike]) -> dict[str, float]:
    """Mean over queries; NaN is skipped for RankDistance only (it propagates elsewhere)."""
    return {
        name: _nan_mean(v) if name == "RankDistance" else float(np.mean(v)) for name, v in metrics.items()
    }


def _nan_mean(values: ArrayLike) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan
