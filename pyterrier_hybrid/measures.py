"""Rank-based evaluation of full rankings, identical to ir_measures' pytrec_eval provider.

The study never materialises full runs: for a block of queries it computes a dense score
matrix against a corpus and keeps only the 1-based ranks of the relevant docs
(:func:`relevant_ranks`), from which :func:`rank_metrics` derives AP, R@k, nDCG@k, RR and
RankDistance exactly as pytrec_eval would on the full run (binary relevance, level 1).

Tie rule (trec_eval's, confirmed empirically against pytrec_eval): docs are ordered by score
descending, and docs with equal scores by docno descending (code point order, which is the
byte order of strcmp on UTF-8), whatever the order of the rows in the run.

Score contract: pytrec_eval receives each score as a C double. Converting float32 (or any
float) to float64 is exact and order-preserving, so ranks computed on a block equal
pytrec_eval's on a run whose score column holds the same values (float32 or their float64
upcast). A run whose scores were computed differently (another dtype or summation order,
rounded text) can order near-ties differently.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import ir_measures
import numpy as np
from ir_measures import Metric
from ir_measures.measures import Measure
from ir_measures.measures.base import Agg
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # pandas is only handled as the DataFrames ir_measures passes in
    import pandas as pd

__all__ = [
    "DEFAULT_MEASURES",
    "MeasureParameterError",
    "RankDistance",
    "RankDistanceWarning",
    "SUPPORTED_MEASURES",
    "main",
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


def _flatten(ranks: Sequence[ArrayLike], n_relevant: ArrayLike) -> _Ranks:
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
    return _Ranks(query, flat.astype(np.float64), position.astype(np.float64), first, size, n_rel)


def _per_query(r: _Ranks, weights: np.ndarray) -> np.ndarray:
    """Sum of weights per query, accumulated in rank order like trec_eval."""
    return np.bincount(r.query, weights=weights, minlength=r.size.size)


def _over_relevant(r: _Ranks, total: np.ndarray) -> np.ndarray:
    return np.divide(total, r.n_relevant, out=np.zeros_like(total), where=r.n_relevant > 0)


def _ap(r: _Ranks) -> np.ndarray:
    return _over_relevant(r, _per_query(r, r.position / r.rank))


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
    distance = np.full(r.size.size, np.nan)
    many = r.size >= 2
    best = r.first[many]
    distance[many] = r.rank[best + r.size[many] - 1] - r.rank[best]
    return distance


_FIXED: dict[str, Callable[[_Ranks], np.ndarray]] = {"AP": _ap, "RR": _rr, "RankDistance": _rank_distance}
_AT_CUTOFF: dict[str, Callable[[_Ranks, int], np.ndarray]] = {"R": _recall, "nDCG": _ndcg}
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


def measure_fn(measure: Measure | str) -> Callable[[Sequence[ArrayLike], ArrayLike], np.ndarray]:
    """Per-query function ``(ranks, n_relevant) -> values`` for an ir_measures measure or its str.

    Raises ValueError listing :data:`SUPPORTED_MEASURES` for any other measure or parameters.
    """
    _, kernel = _kernel(measure)
    return lambda ranks, n_relevant: kernel(_flatten(ranks, n_relevant))


def rank_metrics(
    ranks: Sequence[ArrayLike],
    n_relevant: ArrayLike,
    measures: Iterable[Measure | str] = DEFAULT_MEASURES,
) -> dict[str, np.ndarray]:
    """Per-query measures from the relevant ranks of a full ranking, keyed by ir_measures' str().

    ``ranks[i]`` are query i's 1-based relevant ranks (from :func:`relevant_ranks`);
    ``n_relevant`` (int or one per query) counts its relevant docs in the qrels, so relevant
    docs absent from the corpus count as not retrieved. AP, R@k, nDCG@k and RR equal
    pytrec_eval's (0 when nothing relevant is ranked); RankDistance is max - min rank, NaN
    with fewer than 2 ranked relevant docs.
    """
    flat = _flatten(ranks, n_relevant)
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


# ---------------------------------------------------------------- ir_measures measure


class _NanMeanAgg(Agg):
    """Mean of the non-NaN values (NaN when there are none)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0

    def add(self, value: float) -> None:
        if not math.isnan(value):
            self.total += value
            self.count += 1

    def result(self) -> float:
        return self.total / self.count if self.count else math.nan


class MeasureParameterError(TypeError):
    """A measure was given a parameter it does not take, e.g. ``RankDistance@10`` (like a call
    with an unexpected keyword argument); the message says what is valid."""


class RankDistanceWarning(UserWarning):
    """RankDistance is undefined (NaN) for every query of a run, and why."""


class _RankDistance(Measure):
    """Largest minus smallest rank of a query's relevant docs (relevance >= 1) in the run.

    The language bias of the LAReQA paper: on a multilingual pool (``xquad-r/{q}-multi``,
    ``mlqa-r/{q}-multi``), where a question has one relevant candidate per language, it is the
    spread of the ranks of its answers in the different languages. It takes no parameters
    (``RankDistance@10`` raises :class:`MeasureParameterError`: a cutoff would drop the queries
    whose relevant docs are not all near the top, changing which queries are averaged).

    Ranks use pytrec_eval's order (score descending, then doc_id descending) over all the
    query's docs in the run, so for LAReQA runs on the multilingual pool they are ranks in
    the pool. Ids are not parsed: any query/doc ids work. Relevant docs missing from the run
    are ignored; queries with fewer than 2 ranked relevant docs are skipped: ``iter_calc``
    reports NaN for them (ir_measures back-fills qrels queries with ``DEFAULT``) and the
    aggregator (``calc_aggregate``, ``pt.Evaluate``) averages the other queries. When no
    query can be measured (a single language pair such as ``xquad-r/ar-en`` has one relevant
    candidate per query) a :class:`RankDistanceWarning` says why. Caveat:
    ``pt.Experiment`` (pyterrier 1.1) averages per-query values itself, so its mean is NaN
    if any query is skipped (never in the LAReQA pool, where all 11 relevant docs are ranked);
    use ``perquery=True`` and :func:`mean` there.

    Registered with ir_measures when :mod:`pyterrier_hybrid` is imported: ``"RankDistance"``
    works in ``ir_measures.parse_measure``, in ``pt.Experiment(eval_metrics=[...])`` and on the
    command line through :func:`main`.
    """

    __name__ = "RankDistance"
    NAME = __name__
    PRETTY_NAME = "Rank Distance"
    SHORT_DESC = "Spread (max - min) of the ranks of a query's relevant documents."
    SUPPORTED_PARAMS = {}
    DEFAULT = math.nan
    RUN_INPUTS = ["query_id", "doc_id", "score"]
    QREL_INPUTS = ["query_id", "doc_id", "relevance"]

    def __init__(self, **params) -> None:
        if params:
            given = ", ".join(f"{k}={v!r}" for k, v in params.items())
            hint = f" (that is RankDistance@{params['cutoff']})" if "cutoff" in params else ""
            raise MeasureParameterError(
                f"RankDistance takes no parameters, got {given}{hint}: it is the spread of the ranks of "
                "all of a query's relevant documents in the whole run, so it has no cutoff; valid: "
                "RankDistance"
            )
        super().__init__()

    def aggregator(self) -> Agg:
        return _NanMeanAgg()

    def runtime_impl(self, qrels: pd.DataFrame, run: pd.DataFrame) -> Iterator[Metric]:
        """Called by ir_measures' runtime provider with the whole qrels and run."""
        relevant = qrels.loc[qrels["relevance"] >= 1, ["query_id", "doc_id"]]
        ranked = run[["query_id", "doc_id", "score"]].sort_values(
            ["query_id", "score", "doc_id"], ascending=[True, False, False], kind="stable"
        )
        ranked = ranked.assign(rank=ranked.groupby("query_id").cumcount() + 1)
        spread = (
            ranked.merge(relevant, on=["query_id", "doc_id"])
            .groupby("query_id")["rank"]
            .agg(["min", "max", "size"])
        )
        spread = spread[spread["size"] >= 2]
        if spread.empty and len(ranked):
            _warn_undefined(qrels, relevant)
        for query_id, distance in (spread["max"] - spread["min"]).items():
            yield Metric(query_id=query_id, measure=self, value=float(distance))


def _warn_undefined(qrels: pd.DataFrame, relevant: pd.DataFrame) -> None:
    """Say why no query of a run has a RankDistance (all NaN)."""
    n_queries = qrels["query_id"].nunique()
    several = int((relevant.groupby("query_id").size() >= 2).sum())
    if several == 0:
        why = (
            f"no query has more than one relevant document in the qrels ({n_queries} queries). It is the "
            "spread of the ranks of a query's relevant documents, so it needs a pool with several relevant "
            "candidates per query, e.g. xquad-r/en-multi or mlqa-r/en-multi (one relevant candidate per "
            "language), not a single language pair such as xquad-r/ar-en"
        )
    else:
        why = (
            f"none of the run's queries has 2 of its relevant documents in the run, although the qrels give "
            f"{several} of {n_queries} queries several; rank the whole pool (or deeper) to measure it"
        )
    warnings.warn(f"RankDistance is undefined (NaN) for every query: {why}.", RankDistanceWarning, stacklevel=2)


RankDistance = _RankDistance()
"""ir_measures measure (runtime provider): usable in ``ir_measures.calc_aggregate`` and
``pt.Experiment(eval_metrics=[..., RankDistance])`` (see the skipped-query caveat)."""


# ---------------------------------------------------------------- registration with ir_measures


def _register() -> None:
    """Register RankDistance with ir_measures, once per process.

    ``ir_measures.measures.register`` makes the name known to ``ir_measures.parse_measure`` (and
    so to its command line). PyTerrier parses string ``eval_metrics`` with
    ``ir_measures.parse_trec_measure`` instead, whose trec_eval name table is closed; it is
    wrapped so that, for the names registered here only, what it would reject is parsed as an
    ir_measures name. Every input it accepted is handled exactly as before.
    """
    registry = ir_measures.measures.registry
    current = registry.get(RankDistance.NAME)
    if current is None:
        ir_measures.measures.register(RankDistance)
    elif (type(current).__module__, type(current).__qualname__) != (__name__, _RankDistance.__qualname__):
        raise RuntimeError(
            f"ir_measures already has a measure named {RankDistance.NAME!r} (from "
            f"{type(current).__module__}); pyterrier_hybrid cannot register its own"
        )
    else:
        registry[RankDistance.NAME] = RankDistance  # this module was reloaded: keep the current class
    if not getattr(ir_measures.parse_trec_measure, "_pyterrier_hybrid", False):
        ir_measures.parse_trec_measure = _with_registered_names(ir_measures.parse_trec_measure)


_OWN_NAME = re.compile(r"^\s*RankDistance\b")


def _with_registered_names(parse_trec_measure: Callable[[str], list[Measure]]) -> Callable[[str], list[Measure]]:
    @functools.wraps(parse_trec_measure)
    def wrapper(measure: str) -> list[Measure]:
        try:
            return parse_trec_measure(measure)
        except ValueError:
            if isinstance(measure, str) and _OWN_NAME.match(measure):
                return [ir_measures.parse_measure(measure.strip())]
            raise

    wrapper._pyterrier_hybrid = True
    return wrapper


_register()


def main(argv: Sequence[str] | None = None) -> None:
    """``ir_measures``' command line, with RankDistance registered and the LAReQA ids as qrels.

    Arguments as for ``ir_measures``: ``QRELS RUN MEASURE...`` where QRELS is a TREC qrels file or
    a dataset id (``xquad-r/en-multi``), RUN a TREC run file, e.g.
    ``main(["xquad-r/en-multi", "run.txt", "RankDistance", "AP"])``.
    """
    import ir_measures.__main__ as cli

    import datasets_ext  # noqa: F401  (registers the LAReQA ids, usable as QRELS)

    saved = sys.argv
    sys.argv = [saved[0] if saved else "ir_measures", *(saved[1:] if argv is None else argv)]
    try:
        cli.main_cli()
    except MeasureParameterError as e:
        sys.stderr.write(f"error: {e}\n")
        raise SystemExit(2) from e
    finally:
        sys.argv = saved
