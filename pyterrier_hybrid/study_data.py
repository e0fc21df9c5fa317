"""The questions and candidates of a language-pair study, per language: loaded from a LAReQA
benchmark, optionally kept to a set of questions (and their paragraphs' candidates)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from datasets_ext import get_benchmark, load_lang, parallel_id

__all__ = ["POOLS", "LanguageData", "calibration_sources", "load_languages", "question_tag"]


@dataclass
class LanguageData:
    """One language of a benchmark: its questions (``qids``) and candidates (``docnos``)."""

    lang: str
    qids: np.ndarray
    queries: list[str]
    docnos: np.ndarray
    docs: list[str]
    contexts: list[str]
    answer_col: dict[str, int]  # parallel id -> column of its relevant candidate
    query_subset: str = ""  # appended to the vector cache's collection name when a subset is kept
    doc_subset: str = ""

    @property
    def pids(self) -> list[str]:
        return [parallel_id(q) for q in self.qids]


def _check_languages(bench: Any, languages: Sequence[str] | None) -> tuple[str, ...]:
    if languages is None:
        return bench.languages
    languages = tuple(languages)
    if not languages:
        raise ValueError(f"the language list is empty; choose among {', '.join(bench.languages)}")
    unknown = [lang for lang in languages if lang not in bench.languages]
    if unknown:
        raise ValueError(f"{bench.name} has no language {', '.join(unknown)}; valid: {', '.join(bench.languages)}")
    if len(set(languages)) != len(languages):
        raise ValueError(f"duplicate languages in {list(languages)}")
    return languages


#: Candidate pools: every candidate of the language, or only the sentences of the kept questions' paragraphs.
POOLS = ("full", "paragraphs")


def _keep_questions(data: LanguageData, keep: set[str], pool: str, tag: str) -> LanguageData:
    """``data`` with only the questions whose parallel id is in ``keep`` (and, for pool
    ``paragraphs``, only the candidates of those questions' paragraphs in this language)."""
    rows = [i for i, p in enumerate(data.pids) if p in keep]
    answer = {p: c for p, c in data.answer_col.items() if p in keep}
    out = LanguageData(data.lang, data.qids[rows], [data.queries[i] for i in rows], data.docnos, data.docs,
                       data.contexts, answer, query_subset=f"?questions={tag}")
    if pool == "paragraphs":
        paragraphs = {data.contexts[c] for c in answer.values()}
        cols = [i for i, c in enumerate(data.contexts) if c in paragraphs]
        new = {old: i for i, old in enumerate(cols)}
        out = dataclasses.replace(out, docnos=data.docnos[cols], docs=[data.docs[i] for i in cols],
                                  contexts=[data.contexts[i] for i in cols],
                                  answer_col={p: new[c] for p, c in answer.items()}, doc_subset=f"?paragraphs={tag}")
    return out


def question_tag(questions: Collection[str]) -> str:
    """A short name of a question set (count and digest) for cache keys and records."""
    ids = sorted(set(questions))
    return f"{len(ids)}-{hashlib.sha256(chr(10).join(ids).encode()).hexdigest()[:12]}"


def load_languages(benchmark: str, languages: Sequence[str] | None = None, *,
                   limit_queries: int | None = None, questions: Collection[str] | None = None,
                   pool: str = "full") -> dict[str, LanguageData]:
    """Questions and candidates of each language; ``limit_queries`` keeps each language's first N.

    ``questions``: parallel ids (a question's id across languages) to keep, e.g. a training run's
    held-out validation questions; ``pool``: ``full`` (every candidate) or ``paragraphs`` (only the
    sentences of the kept questions' paragraphs, a small pool of hard same-topic negatives)."""
    bench = get_benchmark(benchmark)
    if limit_queries is not None and limit_queries < 1:
        raise ValueError(f"limit_queries must be a positive number of queries, got {limit_queries}")
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; valid: {', '.join(POOLS)}")
    if pool != "full" and questions is None:
        raise ValueError(f"pool {pool!r} keeps the paragraphs of the given questions: pass questions=")
    if questions is not None and (isinstance(questions, str) or not questions):
        raise ValueError("questions must be a non-empty collection of parallel question ids")
    out = {}
    for lang in _check_languages(bench, languages):
        raw = load_lang(bench, lang)
        queries = raw.queries[:limit_queries] if limit_queries else raw.queries
        col = {d.doc_id: i for i, d in enumerate(raw.docs)}
        out[lang] = LanguageData(
            lang=lang,
            qids=np.array([q.query_id for q in queries]),
            queries=[q.text for q in queries],
            docnos=np.array([d.doc_id for d in raw.docs]),
            docs=[d.text for d in raw.docs],
            contexts=[d.context for d in raw.docs],
            answer_col={pid: col[did] for pid, did in raw.answer.items()},
        )
    if questions is not None:
        keep, tag = set(questions), question_tag(questions)
        known = set().union(*(d.pids for d in out.values()))
        if not keep & known:
            raise ValueError(f"none of the {len(keep)} questions is in {bench.name} "
                             f"({', '.join(out)}); give parallel ids such as {next(iter(sorted(known)))!r}")
        out = {lang: _keep_questions(d, keep, pool, tag) for lang, d in out.items()}
        empty = [lang for lang, d in out.items() if not len(d.qids)]
        if empty:
            raise ValueError(f"no kept question is in {', '.join(empty)}; evaluate the other languages "
                             f"(languages=) or keep more questions")
    return out


def calibration_sources(source: str | None, benchmark: str, langs: dict[str, LanguageData]
                        ) -> dict[str, LanguageData] | None:
    """The candidates whose per-language means ``center`` subtracts: ``None`` for the evaluated ones
    (transductive, label-free), else those of benchmark ``source`` in the evaluated languages (an
    error names the languages it lacks)."""
    if source is None or source == benchmark:
        return None
    other = load_languages(source, None)
    missing = [lang for lang in langs if lang not in other]
    if missing:
        raise ValueError(f"calibration source {source} has no candidates in {', '.join(missing)} (it has "
                         f"{', '.join(other)}); evaluate those languages only (languages=) or use the evaluated "
                         f"candidates (calibration_source=None)")
    return {lang: other[lang] for lang in langs}

