"""Parallel training data for hybrid batch training: one example, several languages.

A :class:`ParallelExample` is one question (``pid``, language independent) with, per language,
its query, its positive passage, hard negatives and an id of the positive. Sources:

- :func:`from_lareqa` (``mlqa-r`` / ``xquad-r``): questions linked by their parallel id, the
  positive is the answer sentence, hard negatives are the other sentences of its paragraph;
- :func:`from_irds_parallel` (e.g. ``mmarco/v2/{lang}/train``): one ir_datasets id per
  language, joined by query id and doc ids of the docpairs;
- :func:`from_jsonl`: one JSON object per line (schema in ``docs/training.md``).

:func:`load_source` dispatches a spec string. No torch import here.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from datasets_ext import BENCHMARKS

from .fs import atomic_write
from .jsonl import read_jsonl

__all__ = [
    "DataLeakageWarning",
    "LangItem",
    "ParallelExample",
    "TrainDataError",
    "check_leakage",
    "filter_languages",
    "from_irds_parallel",
    "from_jsonl",
    "from_lareqa",
    "load_source",
    "split_validation",
    "to_jsonl",
]

logger = logging.getLogger(__name__)

#: The LAReQA benchmarks usable as training sources (datasets_ext.BENCHMARKS).
LAREQA_SOURCES = tuple(sorted(BENCHMARKS))


class TrainDataError(ValueError):
    """A training source that cannot be read or is malformed; the message says where and why."""


class DataLeakageWarning(UserWarning):
    """The same LAReQA benchmark is used for training and for evaluation."""


class LangItem(NamedTuple):
    """One language of a parallel example."""

    query: str
    positive: str
    negatives: tuple[str, ...]
    positive_id: str


@dataclass(frozen=True)
class ParallelExample:
    """A question and its positive in several languages (``langs``: language -> item)."""

    pid: str
    langs: dict[str, LangItem]

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(self.langs))


# ----------------------------------------------------------------- helpers


def _check_language_list(languages: Sequence[str] | None) -> tuple[str, ...] | None:
    if languages is None:
        return None
    if isinstance(languages, str):
        languages = [s.strip() for s in languages.split(",") if s.strip()]
    languages = tuple(languages)
    if not languages:
        raise TrainDataError("the language list is empty")
    if len(set(languages)) != len(languages):
        raise TrainDataError(f"duplicate languages in {list(languages)}")
    return languages


def filter_languages(examples: Iterable[ParallelExample], languages: Sequence[str] | None) -> list[ParallelExample]:
    """Keep only ``languages`` of each example; examples left without any language are dropped."""
    languages = _check_language_list(languages)
    examples = list(examples)
    if languages is None:
        return examples
    present = {lang for ex in examples for lang in ex.langs}
    missing = [lang for lang in languages if lang not in present]
    if missing:
        raise TrainDataError(
            f"no training example has language {', '.join(missing)}; languages present: {', '.join(sorted(present))}"
        )
    keep = set(languages)
    out = []
    for ex in examples:
        langs = {k: v for k, v in ex.langs.items() if k in keep}
        if langs:
            out.append(ParallelExample(ex.pid, langs))
    return out


# ----------------------------------------------------------------- LAReQA


def from_lareqa(benchmark: str, languages: Sequence[str] | None = None) -> list[ParallelExample]:
    """Parallel examples of a LAReQA benchmark (``mlqa-r`` or ``xquad-r``).

    A question's translations share its parallel id; per language the positive is the answer
    sentence (``positive_id`` = its doc id) and the hard negatives are the other sentences of the
    same paragraph (sentences whose text equals the positive's are left out). MLQA-R gives 1148
    examples with 2 to 4 languages, XQuAD-R 1190 examples with 11 languages.
    """
    from datasets_ext import get_benchmark, load_lang, parallel_id

    try:
        bench = get_benchmark(benchmark)
    except KeyError as e:
        raise TrainDataError(str(e)) from e
    languages = _check_language_list(languages)
    if languages is not None:
        bad = [lang for lang in languages if lang not in bench.languages]
        if bad:
            raise TrainDataError(f"{bench.name} has no language {', '.join(bad)}; valid: {', '.join(bench.languages)}")
    order: list[str] = []
    items: dict[str, dict[str, LangItem]] = {}
    for lang in languages or bench.languages:
        data = load_lang(bench, lang)
        text = {d.doc_id: d.text for d in data.docs}
        paragraphs: dict[str, list[str]] = {}
        for d in data.docs:
            paragraphs.setdefault(d.doc_id.rsplit("_", 1)[0], []).append(d.doc_id)
        for q in data.queries:
            pid = parallel_id(q.query_id)
            pos_id = data.answer[pid]
            pos = text[pos_id]
            negs = tuple(text[i] for i in paragraphs[pos_id.rsplit("_", 1)[0]] if i != pos_id and text[i] != pos)
            if pid not in items:
                order.append(pid)
                items[pid] = {}
            items[pid][lang] = LangItem(q.text, pos, negs, pos_id)
    return [ParallelExample(pid, items[pid]) for pid in order]


# ----------------------------------------------------------------- ir_datasets


def from_irds_parallel(
    template: str,
    languages: Sequence[str],
    *,
    max_examples: int | None = None,
    max_negatives: int = 4,
) -> list[ParallelExample]:
    """Parallel examples from one ir_datasets id per language, e.g. ``mmarco/v2/{lang}/train``.

    The docpairs (``query_id``, ``doc_id_a`` positive, ``doc_id_b`` negative) of the first
    language define the examples: one per query id (its first positive, up to ``max_negatives``
    negatives paired with it), in docpairs order, at most ``max_examples``. Each language then
    contributes the query and doc texts it has under the same ids (``queries_iter`` and
    ``docs_store()``); ``positive_id`` is the (language independent) doc id.
    """
    import ir_datasets

    template = template.removeprefix("irds:")
    if "{lang}" not in template:
        raise TrainDataError(f"the ir_datasets template {template!r} must contain '{{lang}}', e.g. mmarco/v2/{{lang}}/train")
    languages = _check_language_list(languages)
    if not languages:
        raise TrainDataError(f"irds:{template} needs the list of languages (languages=, CLI --languages)")
    if max_examples is not None and max_examples < 1:
        raise TrainDataError(f"max_examples must be positive, got {max_examples}")
    datasets = {}
    for lang in languages:
        dsid = template.format(lang=lang)
        try:
            datasets[lang] = ir_datasets.load(dsid)
        except KeyError as e:
            raise TrainDataError(f"unknown ir_datasets id {dsid!r} (from template {template!r}, language {lang!r})") from e
        for what in ("has_queries", "has_docs", "has_docpairs"):
            if not getattr(datasets[lang], what)():
                raise TrainDataError(f"{dsid} has no {what.removeprefix('has_')}; a parallel training source needs "
                                     f"queries, docs and docpairs")
    pivot = datasets[languages[0]]
    pairs: dict[str, tuple[str, list[str]]] = {}
    for dp in pivot.docpairs_iter():
        qid, a, b = dp.query_id, dp.doc_id_a, dp.doc_id_b
        if qid not in pairs:
            if max_examples is not None and len(pairs) >= max_examples:
                break
            pairs[qid] = (a, [])
        pos, negs = pairs[qid]
        if a == pos and b != pos and b not in negs and len(negs) < max_negatives:
            negs.append(b)
    doc_ids = sorted({d for pos, negs in pairs.values() for d in (pos, *negs)})
    items: dict[str, dict[str, LangItem]] = {qid: {} for qid in pairs}
    for lang, ds in datasets.items():
        queries = {q.query_id: q.default_text() for q in ds.queries_iter() if q.query_id in pairs}
        docs = {d.doc_id: d.default_text() for d in ds.docs_store().get_many_iter(doc_ids)}
        for qid, (pos, negs) in pairs.items():
            if qid in queries and pos in docs:
                items[qid][lang] = LangItem(queries[qid], docs[pos], tuple(docs[n] for n in negs if n in docs), pos)
    return [ParallelExample(qid, langs) for qid, langs in items.items() if langs]


# ----------------------------------------------------------------- JSONL


def _jsonl_item(obj: Any, where: str, lang: str, pid: str) -> LangItem:
    if not isinstance(obj, dict):
        raise TrainDataError(f"{where}: langs[{lang!r}] must be an object with query, positive, negatives")
    for key in ("query", "positive"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise TrainDataError(f"{where}: langs[{lang!r}].{key} must be a non-empty string")
    negs = obj.get("negatives", [])
    if not isinstance(negs, list) or not all(isinstance(n, str) for n in negs):
        raise TrainDataError(f"{where}: langs[{lang!r}].negatives must be a list of strings")
    pos_id = obj.get("positive_id", f"{pid}:{lang}")
    if not isinstance(pos_id, (str, int)):
        raise TrainDataError(f"{where}: langs[{lang!r}].positive_id must be a string")
    unknown = set(obj) - {"query", "positive", "negatives", "positive_id"}
    if unknown:
        raise TrainDataError(f"{where}: unknown keys {sorted(unknown)} in langs[{lang!r}]; valid: query, positive, "
                             f"negatives, positive_id")
    return LangItem(obj["query"], obj["positive"], tuple(negs), str(pos_id))


def from_jsonl(path: str | os.PathLike, languages: Sequence[str] | None = None) -> list[ParallelExample]:
    """Read ``{"id": ..., "langs": {"en": {"query", "positive", "negatives": [...]}, ...}}`` lines.

    Optional per language: ``positive_id`` (default ``"{id}:{lang}"``). Blank lines are skipped;
    a malformed line raises :class:`TrainDataError` naming the file and line number.
    """
    path = Path(path)
    if not path.is_file():
        raise TrainDataError(f"training file {str(path)!r} does not exist")
    examples, seen = [], {}
    expected = "an object with keys 'id' and 'langs'"
    for n, obj in read_jsonl(path, expected=expected, error=TrainDataError):
        where = f"{path}:{n}"
        if "id" not in obj or "langs" not in obj:
            raise TrainDataError(f"{where}: expected {expected}")
        pid = obj["id"]
        if not isinstance(pid, (str, int)) or isinstance(pid, bool):
            raise TrainDataError(f"{where}: 'id' must be a string or an integer")
        pid = str(pid)
        if pid in seen:
            raise TrainDataError(f"{where}: duplicate id {pid!r} (first on line {seen[pid]})")
        seen[pid] = n
        langs = obj["langs"]
        if not isinstance(langs, dict) or not langs:
            raise TrainDataError(f"{where}: 'langs' must be a non-empty object mapping language -> item")
        examples.append(ParallelExample(pid, {lang: _jsonl_item(v, where, lang, pid) for lang, v in langs.items()}))
    return filter_languages(examples, languages)


def to_jsonl(examples: Iterable[ParallelExample], path: str | os.PathLike) -> Path:
    """Write examples in the :func:`from_jsonl` format (atomically)."""
    path = Path(path)

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            for ex in examples:
                langs = {lang: {"query": it.query, "positive": it.positive, "negatives": list(it.negatives),
                                "positive_id": it.positive_id} for lang, it in ex.langs.items()}
                f.write(json.dumps({"id": ex.pid, "langs": langs}, ensure_ascii=False) + "\n")

    atomic_write(path, write)
    return path


# ----------------------------------------------------------------- dispatch


def load_source(
    spec: str | os.PathLike | Sequence[ParallelExample],
    *,
    languages: Sequence[str] | None = None,
    max_examples: int | None = None,
) -> list[ParallelExample]:
    """Examples from a spec: ``mlqa-r``, ``xquad-r``, ``irds:TEMPLATE`` (with ``{lang}``) or a
    ``.jsonl`` file; a list of :class:`ParallelExample` is returned filtered. ``max_examples``
    keeps the first N examples."""
    if isinstance(spec, (list, tuple)):
        examples = filter_languages(spec, languages)
    else:
        text = str(spec)
        if text in LAREQA_SOURCES or text.removeprefix("irds:") in LAREQA_SOURCES:
            examples = from_lareqa(text.removeprefix("irds:"), languages)
        elif text.startswith("irds:"):
            if languages is None:
                raise TrainDataError(f"{text} needs the list of languages (languages=, CLI --languages)")
            return from_irds_parallel(text, languages, max_examples=max_examples)
        elif text.endswith((".jsonl", ".json")) or Path(text).is_file():
            examples = from_jsonl(text, languages)
        else:
            raise TrainDataError(
                f"unknown training source {text!r}; valid: {', '.join(LAREQA_SOURCES)}, irds:TEMPLATE (e.g. "
                f"irds:mmarco/v2/{{lang}}/train) or a .jsonl file"
            )
    if max_examples is not None:
        examples = examples[:max_examples]
    return examples


def describe_source(spec: Any) -> str:
    """A printable name of a source spec (for configs and logs)."""
    if isinstance(spec, (list, tuple)):
        return f"<{len(spec)} in-memory examples>"
    return str(spec)


def split_validation(
    examples: Sequence[ParallelExample], fraction: float, seed: int = 0
) -> tuple[list[ParallelExample], list[ParallelExample]]:
    """Hold out ``fraction`` of the examples (by pid, all their languages) for validation.

    Deterministic in ``seed``; order is kept within each part. ``fraction=0`` gives no validation.
    At least one example is held out when ``fraction > 0`` (and at least one is kept for training).
    """
    if not 0 <= fraction < 1:
        raise TrainDataError(f"the validation fraction must be in [0, 1), got {fraction}")
    n = len(examples)
    if fraction == 0 or n == 0:
        return list(examples), []
    n_val = min(max(1, round(fraction * n)), n - 1)
    if n_val < 1:
        return list(examples), []
    held = set(np.random.default_rng(seed).permutation(n)[:n_val].tolist())
    return ([ex for i, ex in enumerate(examples) if i not in held],
            [ex for i, ex in enumerate(examples) if i in held])


def _lareqa_name(spec: Any) -> str | None:
    if spec is None or isinstance(spec, (list, tuple)):
        return None
    text = str(spec).removeprefix("irds:")
    bench = text.split("/", 1)[0]
    return bench if bench in LAREQA_SOURCES else None


def check_leakage(train_source: Any, eval_benchmark: Any) -> bool:
    """Warn loudly when the training source and the evaluation benchmark are the same LAReQA
    benchmark (its questions would be evaluated after being trained on). Returns True if so."""
    a, b = _lareqa_name(train_source), _lareqa_name(eval_benchmark)
    if a is None or a != b:
        return False
    msg = (f"DATA LEAKAGE: training on {a} and evaluating on {b} uses the same questions and candidates; "
           f"the evaluation is not a held-out measure. Train on one LAReQA benchmark and evaluate on the "
           f"other (e.g. --train mlqa-r --eval xquad-r).")
    logger.warning(msg)
    warnings.warn(msg, DataLeakageWarning, stacklevel=2)
    return True
