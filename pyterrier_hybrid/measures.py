"""The RankDistance measure for ir_measures, its registration and the ``ir_measures_lareqa`` CLI.

The rank kernels (:func:`relevant_ranks`, :func:`rank_metrics`, ...) live in
:mod:`pyterrier_hybrid.ranks` and are re-exported here.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import ir_measures
from ir_measures import Metric
from ir_measures.measures import Measure
from ir_measures.measures.base import Agg

from .ranks import DEFAULT_MEASURES, SUPPORTED_MEASURES, mean, measure_fn, rank_metrics, relevant_ranks

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

    The rule, one for every path (``ir_measures.calc_aggregate`` / ``iter_calc``,
    ``pt.Experiment``, ``pt.Evaluate`` and the study's rank kernels, tested against each other):

    - ranks use pytrec_eval's order (score descending, then doc_id descending) over all the
      query's docs in the run; ids are not parsed;
    - every relevant doc of the query in the qrels counts; one the run does not retrieve counts
      at rank **depth + 1**, depth being the number of docs the run has for that query;
    - the value is the largest minus the smallest of these ranks; queries with fewer than 2
      relevant docs in the qrels, and queries absent from the run, have none (NaN in
      ``iter_calc``, ir_measures' value for a query the run lacks; skipped by the mean).

    On a full ranking (the language-pair study, ``num_results=None``) nothing is missing and the
    value is exact. On a truncated or lexical run (top 1000, BM25) it is a lower bound of the
    full-ranking value (a missing doc ranks at least depth + 1), so a run that retrieves few of
    a query's answers is not made to look less biased by ignoring them; every query keeps a
    value, so ``pt.Experiment``'s own mean is defined too. A query with one relevant candidate
    per query only (a single language pair such as ``xquad-r/ar-en``) has no value: when no
    query can be measured a :class:`RankDistanceWarning` says why.

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
        relevant = qrels.loc[qrels["relevance"] >= 1, ["query_id", "doc_id"]].drop_duplicates()
        n_relevant = relevant.groupby("query_id").size()
        measured = n_relevant[n_relevant >= 2]
        if measured.empty:
            if len(run):
                _warn_undefined(qrels, relevant)
            return
        ranked = run[["query_id", "doc_id", "score"]].sort_values(
            ["query_id", "score", "doc_id"], ascending=[True, False, False], kind="stable"
        )
        ranked = ranked.assign(rank=ranked.groupby("query_id").cumcount() + 1)
        depth = ranked.groupby("query_id").size()
        measured = measured[measured.index.isin(depth.index)]
        depth = depth.reindex(measured.index)
        found = ranked.merge(relevant, on=["query_id", "doc_id"]).groupby("query_id")["rank"].agg(["min", "max", "size"])
        found = found.reindex(measured.index)
        below = depth + 1  # where a relevant doc the run does not retrieve counts
        top = found["min"].fillna(below)
        bottom = found["max"].where(found["size"] == measured, below)
        for query_id, distance in (bottom - top).items():
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
    else:  # cannot happen: such queries are measured (missing relevant docs count at depth + 1)
        why = f"{several} of {n_queries} queries have several relevant documents"
    warnings.warn(f"RankDistance is undefined (NaN) for every query: {why}.", RankDistanceWarning, stacklevel=2)


RankDistance = _RankDistance()
"""ir_measures measure (runtime provider): usable in ``ir_measures.calc_aggregate`` and
``pt.Experiment(eval_metrics=[..., RankDistance])``, with one rule for truncated runs (see the class)."""


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
