"""Language calibration: remove per-language offsets from dense retrieval scores.

A multilingual encoder places each language's candidates around its own mean, so in a pool of
several languages a query prefers candidates of some languages whatever their content. Two
label-free corrections (Yang et al., EMNLP 2021, "language-bias removal"):

- ``center``: subtract each candidate language's mean vector ``mu_L`` from its candidates. The
  score becomes ``q . d - q . mu_L``: within one language a constant per query, so monolingual
  and cross-lingual rankings are unchanged; only the mixing of languages in a pool changes.
  The means come from the indexed corpus itself (transductive: the test candidates' vectors, no
  labels) or from a separate corpus of the same languages (:func:`language_means` of it).
- ``zscore``: standardise each query's scores within each candidate language (mean 0, standard
  deviation 1 over that language's candidates in the ranking; a constant block stays 0). Also
  monotone within a language. It needs the scores of the whole pool (a full ranking,
  ``num_results=None``), not a top-k.
- ``lsar``: language-subspace removal (Xie et al., EACL 2024, "Discovering Low-rank Subspaces for
  Language-agnostic Multilingual Representations"). The span ``U`` of the language means, each
  minus their average (rank at most L - 1 for L languages, the whole span: no rank is tuned), is
  projected out of every candidate vector, ``d' = (I - U U^T) d``; the score ``q . d'`` equals
  ``q' . d'`` with the query projected too (the projection is symmetric and idempotent). Unlike the
  two above it changes rankings within a language, so mono and cross rows change as well.

Each method is a :class:`Calibration` registered in :data:`CALIBRATION_METHODS` (name, whether it
needs the per-language means, how it calibrates a block); a new method is one more registration here.

In a PyTerrier pipeline: ``encoder.doc_encoder() >> LanguageCentering(means)`` (or
``LanguageSubspaceRemoval(means)``) before indexing (frames with ``doc_vec`` and ``lang``), or
``retriever >> LanguageScoreNorm()`` on results that carry ``lang``. :func:`~pyterrier_hybrid.evaluate` takes ``calibration=``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyterrier as pt

from .fs import atomic_write

__all__ = ["CALIBRATIONS", "CALIBRATION_METHODS", "Calibration", "LanguageCentering", "LanguageScoreNorm",
           "LanguageSubspaceRemoval", "calibrate_scores", "check_calibrations", "get_calibration", "language_means",
           "language_subspace", "means_needed", "register_calibration"]


@dataclass(frozen=True)
class Calibration:
    """One calibration method of a multilingual pool's scores.

    ``apply(scores, queries, mean)`` calibrates one language block ``[n_queries, n_docs]`` (float64
    in, float64 out); ``queries`` are the block's query vectors and ``mean`` the block language's
    mean candidate vector, given only when ``needs_means``. ``help`` is the CLI's description.
    ``within_language``: the method changes rankings inside one language (its mono and cross rows
    are its own); such a method's ``apply`` also takes ``docs=`` (the block's candidate vectors) and
    ``means=`` (every language's mean vector).
    """

    name: str
    needs_means: bool
    apply: Callable[..., np.ndarray]
    help: str = ""
    within_language: bool = False


#: Calibration methods by name, in the order the CLI lists them (``none`` leaves scores as they are).
CALIBRATION_METHODS: dict[str, Calibration] = {}


def register_calibration(method: Calibration) -> Calibration:
    """Add ``method`` to :data:`CALIBRATION_METHODS` (and :data:`CALIBRATIONS`); a taken name is an error."""
    global CALIBRATIONS
    if method.name in CALIBRATION_METHODS:
        raise ValueError(f"calibration {method.name!r} is already registered")
    CALIBRATION_METHODS[method.name] = method
    CALIBRATIONS = tuple(CALIBRATION_METHODS)
    return method


def _center(scores: np.ndarray, queries: np.ndarray | None, mean: np.ndarray | None) -> np.ndarray:
    if queries is None or mean is None:
        raise ValueError("center calibration needs the query vectors and the language's mean vector")
    return scores - (np.asarray(queries, dtype=np.float64) @ np.asarray(mean, dtype=np.float64))[:, None]


def _zscore(scores: np.ndarray, queries: np.ndarray | None, mean: np.ndarray | None) -> np.ndarray:
    mu, sd = scores.mean(axis=1, keepdims=True), scores.std(axis=1, keepdims=True)
    return (scores - mu) / np.where(sd > 0, sd, 1.0)


def language_subspace(means: Mapping[str, np.ndarray], *, tol: float = 1e-8) -> np.ndarray:
    """The orthonormal basis ``[dim, r]`` of the span of the language means minus their average
    (``lsar``'s language subspace; ``r`` <= languages - 1, directions with a singular value below
    ``tol`` times the largest dropped). Fewer than two languages give an empty basis."""
    if not means:
        raise ValueError("language_subspace needs the mean vector of at least one language")
    m = np.stack([np.asarray(v, dtype=np.float64) for v in means.values()])
    if len(m) < 2:
        return np.zeros((m.shape[1], 0))
    u, s, _ = np.linalg.svd((m - m.mean(axis=0)).T, full_matrices=False)
    return u[:, s > tol * s.max()] if s.max() > 0 else np.zeros((m.shape[1], 0))


def _lsar(scores: np.ndarray, queries: np.ndarray | None, mean: np.ndarray | None, *,
          docs: np.ndarray | None = None, means: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    if queries is None or docs is None or not means:
        raise ValueError("lsar calibration needs the query vectors, the candidate vectors and every language's mean")
    basis = language_subspace(means)
    q = np.asarray(queries, dtype=np.float64) @ basis
    d = np.asarray(docs, dtype=np.float64) @ basis
    return scores - q @ d.T


NONE = register_calibration(Calibration("none", False, lambda scores, queries, mean: scores))
CENTER = register_calibration(Calibration("center", True, _center,
                                          "subtract each language's mean candidate vector"))
ZSCORE = register_calibration(Calibration("zscore", False, _zscore, "standardise scores per language"))
LSAR = register_calibration(Calibration("lsar", True, _lsar, "project the language-mean subspace out of the vectors",
                                        within_language=True))
#: Calibration names (``none`` leaves scores as they are).
CALIBRATIONS: tuple[str, ...] = tuple(CALIBRATION_METHODS)


def get_calibration(name: str) -> Calibration:
    """The method called ``name``; an unknown name is an error listing the valid ones."""
    if name not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration {name!r}; valid: {', '.join(CALIBRATION_METHODS)}")
    return CALIBRATION_METHODS[name]


def means_needed(calibrations: Sequence[str]) -> list[str]:
    """The names among ``calibrations`` whose method needs per-language mean vectors."""
    return [c for c in calibrations if get_calibration(c).needs_means]


def check_calibrations(calibration: str | Sequence[str]) -> tuple[str, ...]:
    """The calibration names as a tuple (a comma-separated string is accepted); unknown or repeated
    names are an error that lists the valid ones."""
    names = tuple(c.strip() for c in calibration.split(",")) if isinstance(calibration, str) else tuple(calibration)
    bad = [c for c in names if c not in CALIBRATION_METHODS]
    if bad or not names:
        raise ValueError(f"unknown calibration {', '.join(map(repr, bad)) or '(none given)'}; valid: "
                         f"{', '.join(CALIBRATIONS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"calibration {list(names)} repeats a name; give each of {', '.join(CALIBRATIONS)} once")
    return names


def language_means(vectors: Mapping[str, np.ndarray] | np.ndarray, langs: Sequence[str] | None = None
                   ) -> dict[str, np.ndarray]:
    """Each language's mean vector (float64): from ``{lang: [n, dim] vectors}``, or from one
    ``[n, dim]`` array with its rows' languages ``langs``."""
    if not isinstance(vectors, Mapping):
        if langs is None:
            raise ValueError("language_means of one array needs langs=, the language of each row")
        arr, langs = np.asarray(vectors), np.asarray(langs, dtype=object)
        if len(langs) != len(arr):
            raise ValueError(f"{len(langs)} languages for {len(arr)} vectors")
        vectors = {str(lang): arr[langs == lang] for lang in sorted(set(langs))}
    out = {}
    for lang, v in vectors.items():
        v = np.asarray(v, dtype=np.float64)
        if v.ndim != 2 or not len(v):
            raise ValueError(f"language {lang!r}: expected a non-empty [n, dim] array of vectors, got shape {v.shape}")
        out[lang] = v.mean(axis=0)
    return out


def calibrate_scores(scores: np.ndarray, method: str, *, queries: np.ndarray | None = None,
                     mean: np.ndarray | None = None, docs: np.ndarray | None = None,
                     means: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """One language block of scores ``[n_queries, n_docs]`` calibrated (float64) by the method
    called ``method`` (:data:`CALIBRATION_METHODS`): ``center`` subtracts ``queries @ mean`` per
    query (``queries`` the query vectors, ``mean`` the block language's mean vector); ``zscore``
    standardises each row; ``lsar`` removes the language subspace of ``means`` (every language's
    mean) from ``docs`` (the block's candidate vectors); ``none`` returns the scores."""
    cal = get_calibration(method)
    scores = np.asarray(scores, dtype=np.float64)
    if cal.within_language:
        return cal.apply(scores, queries, mean, docs=docs, means=means)
    return cal.apply(scores, queries, mean)


def _need(inp: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in inp.columns]
    if missing:
        hint = (" (language calibration needs each document's language: index a corpus whose documents have a "
                "'lang' field, e.g. the LAReQA multilingual pools, or add the column)") if "lang" in missing else ""
        raise ValueError(f"{what} needs column(s) {', '.join(missing)}; got {', '.join(map(str, inp.columns))}{hint}")


class LanguageCentering(pt.Transformer):
    """Subtracts each document's language mean from its ``doc_vec`` (column ``lang``).

    ``means``: ``{lang: vector}`` (from :func:`language_means` of a corpus), or ``None`` to take
    them from the frame being transformed (transductive: the whole corpus must pass in one frame).
    A language without a mean is an error that lists the known ones.
    """

    def __init__(self, means: Mapping[str, np.ndarray] | None = None) -> None:
        self.means = {k: np.asarray(v, dtype=np.float64) for k, v in means.items()} if means is not None else None

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        _need(inp, ["doc_vec", "lang"], "LanguageCentering")
        vecs = np.stack(inp["doc_vec"].to_numpy()) if len(inp) else np.zeros((0, 0))
        langs = inp["lang"].astype(str).to_numpy()
        means = self.means if self.means is not None else language_means(vecs, langs)
        unknown = sorted(set(langs) - set(means))
        if unknown:
            raise ValueError(f"no language mean for {', '.join(unknown)}; known: {', '.join(sorted(means))}")
        out = inp.copy()
        centred = vecs.astype(np.float64) - np.stack([means[lang] for lang in langs]) if len(inp) else vecs
        out["doc_vec"] = list(centred.astype(np.float32))
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """The means as ``.npz`` (written atomically)."""
        if self.means is None:
            raise ValueError("a transductive LanguageCentering (means=None) has no means to save")
        path, means = Path(path), self.means

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, **means)

        atomic_write(path, write)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> LanguageCentering:
        """Means saved by :meth:`save`."""
        with np.load(path) as data:
            return cls({k: data[k] for k in data.files})

    def __repr__(self) -> str:
        return f"LanguageCentering({'transductive' if self.means is None else sorted(self.means)})"


class LanguageScoreNorm(pt.Transformer):
    """Standardises ``score`` within each (query, document language) group of a result frame
    (column ``lang``), then re-sorts and re-ranks each query (``rank`` 0-based). Apply it to full
    rankings: on a top-k the statistics are those of the retrieved documents only."""

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        _need(inp, ["qid", "docno", "score", "lang"], "LanguageScoreNorm")
        out = inp.copy()
        g = out.groupby(["qid", "lang"], sort=False)["score"]
        sd = g.transform("std", ddof=0)
        out["score"] = ((out["score"] - g.transform("mean")) / sd.where(sd > 0, 1.0)).astype(np.float64)
        out = out.sort_values(["qid", "score", "docno"], ascending=[True, False, False], kind="stable")
        out["rank"] = out.groupby("qid", sort=False).cumcount()
        return out.reset_index(drop=True)


class LanguageSubspaceRemoval(pt.Transformer):
    """Projects the language subspace (:func:`language_subspace` of ``means``) out of ``doc_vec`` and,
    when present, ``query_vec`` (``lsar``). ``means``: ``{lang: vector}`` from :func:`language_means`
    of a corpus (another corpus of the same languages works as well as the indexed one)."""

    def __init__(self, means: Mapping[str, np.ndarray]) -> None:
        self.means = {k: np.asarray(v, dtype=np.float64) for k, v in means.items()}
        self.basis = language_subspace(self.means)

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        cols = [c for c in ("doc_vec", "query_vec") if c in inp.columns]
        if not cols:
            raise ValueError(f"LanguageSubspaceRemoval needs column doc_vec or query_vec; got "
                             f"{', '.join(map(str, inp.columns))}")
        out = inp.copy()
        for c in cols:
            if len(inp):
                v = np.stack(inp[c].to_numpy()).astype(np.float64)
                out[c] = list((v - (v @ self.basis) @ self.basis.T).astype(np.float32))
        return out

    def __repr__(self) -> str:
        return f"LanguageSubspaceRemoval({sorted(self.means)}, rank={self.basis.shape[1]})"
