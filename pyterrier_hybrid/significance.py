"""Paired significance tests between systems of a study, as ``pt.Experiment`` does them.

Per-query values are paired by (query, corpus language); the test is ``scipy.stats.ttest_rel``
(system vs baseline) and the correction is ``statsmodels``' ``multipletests`` (``holm``,
``bonferroni``, ...), exactly as ``pt.Experiment(baseline=, correction=)`` computes them.

The unit of a test is what was sampled: a question. A language pair has each question once, so
pair-level tests use its rows; a setting's rows are one question seen through many pairs
(XQuAD-R cross-lingual: 1,190 questions x 110 pairs), so setting-level tests first average each
question's rows (``unit="question"``; the question of ``qid`` ``<lang>_<id>`` is ``<id>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["correct", "paired_tests", "question_of"]


class PerQuery(Protocol):
    """What the tests read from a study result (:class:`~pyterrier_hybrid.results.StudyResult`)."""

    per_query: pd.DataFrame
    systems: Sequence[str]

    @property
    def measures(self) -> list[str]: ...

KEYS = ["setting", "query_lang", "doc_lang", "qid"]


def question_of(qids: pd.Series | pd.Index) -> pd.Series:
    """The language-independent question id of ``<lang>_<id>`` query ids (the id shared by a
    question's translations)."""
    return pd.Series(qids, copy=False).astype(str).str.split("_", n=1).str[-1]


def _test(base: np.ndarray, other: np.ndarray) -> tuple[int, int, float]:
    p = stats.ttest_rel(other, base)[1] if len(base) > 1 else np.nan
    return int((other > base).sum()), int((other < base).sum()), float(p)


def correct(df: pd.DataFrame, family: list[str], correction: str | None = "holm", alpha: float = 0.05) -> pd.DataFrame:
    """Add ``p_corrected`` and ``reject`` to a frame of tests (column ``p_value``), correcting within
    each group of ``family`` columns (``statsmodels`` method name, e.g. ``holm``; ``None``: no
    correction, ``reject`` is ``p_value < alpha``). Modifies and returns ``df``."""
    df["p_corrected"], df["reject"] = np.nan, False
    if correction is None:
        df["reject"] = df["p_value"] < alpha
        return df
    import statsmodels.stats.multitest as mt

    for _, idx in df.groupby(family if len(family) > 1 else family[0], sort=False).groups.items():
        sub = df.loc[idx, "p_value"]
        ok = sub.notna()
        if ok.any():
            reject, corrected, _, _ = mt.multipletests(sub[ok], alpha=alpha, method=correction)
            df.loc[sub[ok].index, "p_corrected"] = corrected
            df.loc[sub[ok].index, "reject"] = reject
    return df


def paired_tests(
    result: PerQuery,
    *,
    baseline: int = 0,
    measure: str = "AP",
    correction: str | None = "holm",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Tests of every system against ``systems[baseline]`` per setting and per language pair.

    Rows with ``query_lang == "all"`` test a whole setting with the question as the unit (each
    question's rows averaged first; corrected across systems, like ``pt.Experiment``); the other
    rows test one pair, one row per question (corrected across the pairs of a setting and the
    systems). Columns: means, ``n_queries`` (rows), ``n_units`` (questions tested), ``+``/``-``
    (units improved/degraded), ``p_value``, ``p_corrected``, ``reject``.
    """
    if len(result.systems) < 2:
        raise ValueError("significance tests need at least two systems")
    if not 0 <= baseline < len(result.systems):
        raise ValueError(f"baseline must index the systems 0..{len(result.systems) - 1}, got {baseline}")
    if measure not in result.measures:
        raise ValueError(f"unknown measure {measure!r}; valid: {', '.join(result.measures)}")
    pq = result.per_query
    base_name = result.systems[baseline]
    base = pq[pq.system == base_name].set_index(KEYS)[measure]
    rows = []
    for name in result.systems:
        if name == base_name:
            continue
        other = pq[pq.system == name].set_index(KEYS)[measure].reindex(base.index)
        joined = pd.DataFrame({"b": base, "o": other}).dropna()
        for level, keys in (("setting", ["setting"]), ("pair", ["setting", "query_lang", "doc_lang"])):
            for key, g in joined.groupby(level=keys, sort=False):
                key = key if isinstance(key, tuple) else (key,)
                units = g
                if level == "setting":  # one unit per question: average its pairs first
                    units = g.groupby(question_of(g.index.get_level_values("qid")).to_numpy()).mean()
                plus, minus, p = _test(units["b"].to_numpy(), units["o"].to_numpy())
                rows.append({
                    "system": name, "baseline": base_name, "level": level, "setting": key[0],
                    "query_lang": key[1] if level == "pair" else "all",
                    "doc_lang": key[2] if level == "pair" else "all",
                    "measure": measure, "n_queries": len(g), "n_units": len(units), "baseline_mean": g["b"].mean(),
                    "system_mean": g["o"].mean(), "+": plus, "-": minus, "p_value": p,
                })
    df = pd.DataFrame(rows)
    return correct(df, ["level", "setting"], correction, alpha)
