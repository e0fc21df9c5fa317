"""The result of a language-pair study: per-query values of every system, and the tables read
from them (pairs, per language, summary, rank distance, significance). Data only: writing files
is :func:`pyterrier_hybrid.report.write_outputs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .significance import paired_tests

__all__ = ["SETTINGS", "StudyResult"]

SETTINGS = ("mono", "cross", "multi")


@dataclass
class StudyResult:
    """Per-query values of every system, with the pair, language and summary tables."""

    benchmark: str
    languages: tuple[str, ...]
    settings: tuple[str, ...]
    per_query: pd.DataFrame
    systems: list[str]
    config: dict = field(default_factory=dict)

    @property
    def measures(self) -> list[str]:
        fixed = {"system", "setting", "query_lang", "doc_lang", "qid"}
        return [c for c in self.per_query.columns if c not in fixed]

    def pairs(self) -> pd.DataFrame:
        """One row per system and (query language, corpus language) setting: means and n_queries."""
        g = self.per_query.groupby(["system", "setting", "query_lang", "doc_lang"], sort=False)
        out = g[self.measures].mean()
        out.insert(0, "n_queries", g.size())
        return out.reset_index()

    def by_language(self, measure: str = "AP") -> pd.DataFrame:
        """Per system and query language: Mono., Cr. (mean over corpus languages) and Mul. (paper Tables 3-6)."""
        p = self.pairs()
        t = p.pivot_table(index=["system", "query_lang"], columns="setting", values=measure, aggfunc="mean", sort=False)
        return t.reindex(columns=[s for s in SETTINGS if s in t.columns])

    def summary(self) -> pd.DataFrame:
        """Per system: macro averages over pairs (paper Table 1: Mo., Cr., Mul.) and rank distance (Table 2)."""
        p = self.pairs()
        rows = []
        for system in self.systems:
            ps = p[p.system == system]
            row: dict[str, Any] = {"system": system}
            for s in self.settings:
                sub = ps[ps.setting == s]
                row[f"{s}_map"] = sub["AP"].mean() if len(sub) else np.nan
                for m in ("R@1", "R@10"):
                    if m in sub:
                        row[f"{s}_{m}"] = sub[m].mean() if len(sub) else np.nan
            if "multi" in self.settings:
                row["rank_distance"] = ps[ps.setting == "multi"]["RankDistance"].mean()
            rows.append(row)
        return pd.DataFrame(rows).set_index("system")

    def rank_distance(self) -> pd.DataFrame:
        """Mean rank distance per system and query language (paper Tables 2, 7, 8)."""
        multi = self.per_query[self.per_query.setting == "multi"]
        return multi.pivot_table(index="query_lang", columns="system", values="RankDistance", aggfunc="mean",
                                 sort=False)[self.systems]

    def significance(self, *, baseline: int = 0, correction: str | None = "holm") -> pd.DataFrame:
        """Paired t-tests of every system against ``systems[baseline]`` (see :mod:`~pyterrier_hybrid.significance`)."""
        return paired_tests(self, baseline=baseline, correction=correction)

    def save(self, out: Any, **kwargs: Any) -> None:
        """Moved: results are data; write them with ``pyterrier_hybrid.write_outputs(result, out)``."""
        raise AttributeError("StudyResult.save() moved in pyterrier-hybrid 0.1: use "
                             "pyterrier_hybrid.write_outputs(result, out) (or evaluate(..., out=...))")
