"""The result of a language-pair study: per-query values of every system, and the tables read
from them (pairs, per language, summary, rank distance, significance). Data only: writing files
is :func:`pyterrier_hybrid.report.write_outputs`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .calibration import CALIBRATION_METHODS
from .significance import paired_tests

__all__ = ["SETTINGS", "StudyResult", "SystemName", "combine_results"]

SETTINGS = ("mono", "cross", "multi")

_SEED_SUFFIX = re.compile(r"/s(\d+)$")
_WISE_SUFFIX = re.compile(r"\+wise(val|[0-9.]+(?:e-\d+)?)$")


@dataclass(frozen=True)
class SystemName:
    """A study system's name ``<run>[+wise<lambda>][/s<seed>][+<calibration>]``, e.g.
    ``x-y+wise0.5/s2+center``: the trained run (or any model name), its WiSE-FT interpolation
    (a lambda, or ``val`` for the one chosen on validation questions), the seed of a seeded study
    and the calibration of its multilingual pool (``none``: not calibrated).

    ``str(name)`` / :meth:`format` writes it, :meth:`parse` reads it back
    (``SystemName.parse(text).format() == text`` for every name).
    """

    run: str
    wise: str | None = None
    seed: int | None = None
    calibration: str = "none"

    def format(self) -> str:
        """The name as written in results: ``<run>[+wise<lambda>][/s<seed>][+<calibration>]``."""
        text = self.run
        if self.wise is not None:
            text += f"+wise{self.wise}"
        if self.seed is not None:
            text += f"/s{self.seed}"
        if self.calibration != "none":
            text += f"+{self.calibration}"
        return text

    __str__ = format

    @classmethod
    def parse(cls, text: str) -> SystemName:
        """The parts of a written name; a part that is not there is left unset (a name without any
        suffix is all ``run``). The calibration suffix is recognised only for a registered method."""
        rest, calibration = text, "none"
        head, plus, tail = rest.rpartition("+")
        if plus and tail != "none" and tail in CALIBRATION_METHODS:
            rest, calibration = head, tail
        seed = None
        m = _SEED_SUFFIX.search(rest)
        if m:
            rest, seed = rest[:m.start()], int(m.group(1))
        wise = None
        m = _WISE_SUFFIX.search(rest)
        if m:
            rest, wise = rest[:m.start()], m.group(1)
        return cls(rest, wise, seed, calibration)

    @staticmethod
    def wise_text(lam: float | str) -> str:
        """How a WiSE-FT lambda is written in a name (``0.5``; ``val`` as is)."""
        return lam if isinstance(lam, str) else f"{lam:g}"

    def with_(self, **parts: Any) -> SystemName:
        """This name with some parts replaced (``wise=`` may be a float lambda)."""
        if parts.get("wise") is not None:
            parts["wise"] = self.wise_text(parts["wise"])
        return replace(self, **parts)

    @property
    def configuration(self) -> str:
        """The name without its seed: what is compared across seeds (``x-y+wise0.5+center``)."""
        return replace(self, seed=None).format()

    @property
    def model(self) -> str:
        """The name without its calibration: the model whose pool was calibrated."""
        return replace(self, calibration="none").format()


@dataclass
class StudyResult:
    """Per-query values of every system, with the pair, language and summary tables."""

    benchmark: str
    languages: tuple[str, ...]
    settings: tuple[str, ...]
    per_query: pd.DataFrame
    systems: list[str]
    config: dict = field(default_factory=dict)
    #: pairs() and summary() computed once per state of the data (a sweep reads them many times).
    _tables: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _cached(self, name: str, compute: Any) -> pd.DataFrame:
        key = (id(self.per_query), len(self.per_query), tuple(self.systems), tuple(self.settings))
        hit = self._tables.get(name)
        if hit is None or hit[0] != key:
            hit = self._tables[name] = (key, compute())
        return hit[1].copy()

    @property
    def measures(self) -> list[str]:
        fixed = {"system", "setting", "query_lang", "doc_lang", "qid"}
        return [c for c in self.per_query.columns if c not in fixed]

    def pairs(self) -> pd.DataFrame:
        """One row per system and (query language, corpus language) setting: means and n_queries."""
        return self._cached("pairs", self._pairs)

    def _pairs(self) -> pd.DataFrame:
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
        """Per system: macro averages over pairs (paper Table 1: Mo., Cr., Mul.) and rank distance (Table 2).
        Computed once (a copy is returned each time)."""
        return self._cached("summary", self._summary)

    def _summary(self) -> pd.DataFrame:
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
                                 sort=False, dropna=False).reindex(columns=self.systems)

    def significance(self, *, baseline: int = 0, correction: str | None = "holm") -> pd.DataFrame:
        """Paired t-tests of every system against ``systems[baseline]`` (see :mod:`~pyterrier_hybrid.significance`)."""
        return paired_tests(self, baseline=baseline, correction=correction)

    def save(self, out: Any, **kwargs: Any) -> None:
        """Moved: results are data; write them with ``pyterrier_hybrid.write_outputs(result, out)``."""
        raise AttributeError("StudyResult.save() moved in pyterrier-hybrid 0.1: use "
                             "pyterrier_hybrid.write_outputs(result, out) (or evaluate(..., out=...))")


#: What must be equal in every study that :func:`combine_results` puts together (model records,
#: versions, command line and CPU may differ: each model's stays in ``config["models"]``).
_SAME_STUDY = ("benchmark", "languages", "settings", "limit_queries", "questions", "pool", "text_mode",
               "calibration", "calibration_source")


def combine_results(results: list[StudyResult]) -> StudyResult:
    """One study from studies of the same evaluation run one model at a time (for example each
    training run evaluated as soon as it finished, or read back with
    :func:`~pyterrier_hybrid.report.read_outputs`): systems in the order given, per-query rows
    concatenated. Every option that defines the evaluation (benchmark, languages, settings,
    questions, pool, calibration, ...) must be equal; a system name may appear once."""
    results = list(results)
    if not results:
        raise ValueError("combine_results needs at least one StudyResult")
    first = results[0]
    for i, r in enumerate(results[1:], 1):
        diff = [k for k in _SAME_STUDY if r.config.get(k) != first.config.get(k)]
        if (r.benchmark, r.languages, r.settings) != (first.benchmark, first.languages, first.settings):
            diff = sorted({"benchmark", "languages", "settings", *diff})
        if diff:
            raise ValueError(f"result {i} is not the same evaluation as result 0: they differ in "
                             + ", ".join(f"{k} ({first.config.get(k)!r} vs {r.config.get(k)!r})" for k in diff)
                             + f"; combined studies must agree on {', '.join(_SAME_STUDY)}")
    systems = [s for r in results for s in r.systems]
    repeated = sorted({s for s in systems if systems.count(s) > 1})
    if repeated:
        raise ValueError(f"system names appear in more than one result: {', '.join(repeated)} "
                         "(name the models apart with evaluate(..., names=...))")
    config = {**first.config, "models": [m for r in results for m in r.config.get("models", [])],
              "combined": len(results)}
    per_query = pd.concat([r.per_query for r in results], ignore_index=True)
    return StudyResult(first.benchmark, first.languages, first.settings, per_query, systems, config=config)
