"""The LAReQA format shared by XQuAD-R and MLQA-R: records, ids, downloads and handlers.

A benchmark is one SQuAD-style JSON file per language. Every sentence of every paragraph is
a retrieval candidate (not de-duplicated) carrying its paragraph as context; the relevant
candidate of a question is the sentence whose character span contains the answer start.
A question's translations share the upstream qa ``id``.

Ids (unique across a whole multilingual pool, parseable without any lookup):

- query ``"{lang}_{qa_id}"``, e.g. ``"ar_56beb4343aeaaa14008c925b"``
- doc ``"{lang}_{paragraph}_{sentence}"``, e.g. ``"ar_12_3"`` (0-based indexes in that
  language's file)

No ``from __future__ import annotations`` here: ir_datasets' exporters and PyTerrier's text
loader read the record classes' ``__annotations__`` and only handle real types (``str``), not
the strings that postponed evaluation would leave there.
"""

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import NamedTuple

import ir_datasets
from ir_datasets.formats import BaseDocs, BaseQrels, BaseQueries, GenericQuery, TrecQrel
from ir_datasets.indices import Docstore
from ir_datasets.util import Download, HashVerificationError, LocalDownload, RequestsDownload

__all__ = [
    "DATA_DIR_ENV",
    "Benchmark",
    "LareqaDataError",
    "LareqaDoc",
    "UnknownDatasetError",
    "doc_id",
    "lang_of",
    "parallel_id",
    "query_id",
]

#: Environment variable naming a local directory laid out like ``{benchmark}/{lang}.json``.
DATA_DIR_ENV = "LAREQA_DATA_DIR"
RAW_URL = "https://raw.githubusercontent.com/google-research-datasets/lareqa/{commit}/{path}"
QRELS_DEFS = {1: "the sentence whose span contains the answer start"}


class LareqaDataError(ValueError):
    """A benchmark file is missing (not in ``$LAREQA_DATA_DIR``, download failed), corrupt (md5
    mismatch, truncated) or malformed."""


class UnknownDatasetError(KeyError):
    """An unknown benchmark, language or dataset id; the message lists the valid choices."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class LareqaDoc(NamedTuple):
    """A retrieval candidate: one sentence of one paragraph, in one language."""

    doc_id: str
    text: str
    context: str
    lang: str

    def default_text(self) -> str:
        """The sentence (the paragraph is in ``context``)."""
        return self.text


def query_id(lang: str, qa_id: str) -> str:
    """The query id of the question ``qa_id`` in language ``lang``."""
    return f"{lang}_{qa_id}"


def doc_id(lang: str, paragraph: int, sentence: int) -> str:
    """The doc id of a sentence, by 0-based paragraph and sentence index in ``lang``'s file."""
    return f"{lang}_{paragraph}_{sentence}"


def lang_of(any_id: str) -> str:
    """The language code of a LAReQA query or doc id: ``lang_of("ar_12_3") == "ar"``."""
    lang, sep, _ = any_id.partition("_")
    if not sep or not lang:
        raise ValueError(f"{any_id!r} is not a LAReQA id (expected '{{lang}}_...')")
    return lang


def parallel_id(qid: str) -> str:
    """The language-independent id shared by a question's translations (the upstream qa id)."""
    lang_of(qid)
    return qid.partition("_")[2]


@dataclass(frozen=True, eq=False)
class Benchmark:
    """One LAReQA benchmark: its languages, pinned upstream files and documentation."""

    name: str
    languages: tuple[str, ...]
    commit: str
    upstream_dir: str
    md5: dict[str, str]
    license: str
    description: str
    bibtex: str
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # lang -> (questions, candidates)
    #: What a model card trained on this benchmark says: hub dataset tag, license id, the data
    #: sentence (terms the weights inherit) and a limitation of the training data.
    card_dataset: str = ""
    card_license: str = ""
    card_data: str = ""
    card_limitation: str = ""

    def url(self, lang: str) -> str:
        return RAW_URL.format(commit=self.commit, path=f"{self.upstream_dir}/{lang}.json")

    def check_lang(self, lang: str) -> None:
        if lang not in self.languages:
            raise UnknownDatasetError(
                f"{self.name} has no language {lang!r}; valid languages: {', '.join(self.languages)}"
            )

    def path(self, lang: str) -> Path:
        """The local path of ``lang``'s file, fetched (md5-verified) on first use."""
        self.check_lang(lang)
        return _fetch(self, lang)


# ---------------------------------------------------------------- downloads


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@cache
def _verified(path: str, size: int, mtime: float, expected: str) -> bool:
    return _md5(Path(path)) == expected


def _fetch(bench: Benchmark, lang: str) -> Path:
    """Resolve ``lang``'s file: the cache if valid, else ``$LAREQA_DATA_DIR``, else upstream.

    Files land in ``$IR_DATASETS_HOME/{benchmark}/{lang}.json`` through ir_datasets' own
    ``Download`` (written to a ``.tmp`` file, md5-verified, then renamed: never partial).
    """
    expected = bench.md5[lang]
    cache = ir_datasets.util.home_path() / bench.name / f"{lang}.json"
    if cache.exists():
        st = cache.stat()
        if _verified(str(cache), st.st_size, st.st_mtime, expected):
            return cache
        cache.unlink()  # corrupt cache entry: fetch again
    data_dir = os.environ.get(DATA_DIR_ENV)
    if data_dir:
        local = Path(data_dir) / bench.name / f"{lang}.json"
        if not local.is_file():
            raise LareqaDataError(
                f"{DATA_DIR_ENV}={data_dir} has no {bench.name}/{lang}.json; the directory must be laid "
                f"out as {bench.name}/{{lang}}.json for {', '.join(bench.languages)} (unset it to download)"
            )
        source, mirror = str(local), LocalDownload(local, mkdir=False)
        network_errors: tuple[type[Exception], ...] = ()
    else:
        source, mirror = bench.url(lang), RequestsDownload(bench.url(lang))
        # ConnectionError, Timeout, HTTPError: what requests raises once ir_datasets' retries are spent
        network_errors = (ir_datasets.lazy_libs.requests().exceptions.RequestException,)
    try:
        Download([mirror], cache_path=str(cache), expected_md5=expected).path()
    except HashVerificationError as e:
        raise LareqaDataError(
            f"md5 mismatch for {bench.name}/{lang}.json from {source}: {e}. The file is corrupt or "
            f"truncated; nothing was cached. Expected the upstream file of commit {bench.commit}."
        ) from e
    except network_errors as e:
        raise LareqaDataError(
            f"cannot download {bench.name}/{lang}.json from {source} ({type(e).__name__}: {e}). "
            f"Offline? Set {DATA_DIR_ENV} to a directory laid out as {bench.name}/{{lang}}.json "
            f"(the files of commit {bench.commit}, md5-verified), or put this file at {cache}."
        ) from e
    return cache


# ------------------------------------------------------------------ parsing


class LangData(NamedTuple):
    """One language's file, parsed."""

    docs: list[LareqaDoc]
    queries: list[GenericQuery]
    answer: dict[str, str]  # parallel id -> relevant doc id in this language


def _parse(bench: Benchmark, lang: str, path: Path) -> LangData:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)["data"]
        docs, queries, answer = [], [], {}
        p_idx = 0
        for article in data:
            for para in article["paragraphs"]:
                breaks = para["sentence_breaks"]
                for s_idx, sentence in enumerate(para["sentences"]):
                    docs.append(LareqaDoc(doc_id(lang, p_idx, s_idx), sentence, para["context"], lang))
                for qa in para["qas"]:
                    start = qa["answers"][0]["answer_start"]
                    hits = [i for i, (a, b) in enumerate(breaks) if a <= start < b]
                    if len(hits) != 1:
                        raise ValueError(f"answer of qa {qa['id']} lies in {len(hits)} sentences")
                    queries.append(GenericQuery(query_id(lang, qa["id"]), qa["question"]))
                    answer[qa["id"]] = doc_id(lang, p_idx, hits[0])
                p_idx += 1
    except (ValueError, KeyError, IndexError, TypeError) as e:  # JSONDecodeError is a ValueError
        raise LareqaDataError(
            f"{path} is not a valid {bench.name} file ({type(e).__name__}: {e}); delete it to fetch it again"
        ) from e
    return LangData(docs, queries, answer)


@lru_cache(maxsize=64)
def _load_cached(bench: Benchmark, lang: str, path: str, mtime: float) -> LangData:
    return _parse(bench, lang, Path(path))


def load_lang(bench: Benchmark, lang: str) -> LangData:
    """Parse ``lang``'s file of ``bench`` (cached in memory per process)."""
    path = bench.path(lang)
    return _load_cached(bench, lang, str(path), path.stat().st_mtime)


# ------------------------------------------------------------------ handlers


class _ListIter:
    """An iterator over a list that also supports ir_datasets-style slicing (``it[10:20]``)."""

    def __init__(self, items: Sequence):
        self._items = items
        self._it = iter(items)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return _ListIter(self._items[key])
        return self._items[key]


class _MemoryDocstore(Docstore):
    """A docstore over parsed records (docs, or queries for ``lookup --qid``), by their id field."""

    def __init__(self, docs: list[tuple], cls: type = LareqaDoc, id_field: str = "doc_id"):
        super().__init__(cls, id_field)
        self._docs = docs
        self._by_id = {getattr(d, id_field): d for d in docs}

    def get_many_iter(self, doc_ids):
        for did in doc_ids:
            if did in self._by_id:
                yield self._by_id[did]

    def __iter__(self):
        return _ListIter(self._docs)

    def count(self) -> int:
        return len(self._docs)

    def built(self) -> bool:
        return True


@dataclass(frozen=True)
class Selection:
    """Which part of a benchmark a dataset id denotes.

    ``query_langs``: languages of the questions; ``doc_langs``: languages of the corpus.
    Questions without a relevant candidate in the corpus are left out.
    """

    bench: Benchmark
    query_langs: tuple[str, ...]
    doc_langs: tuple[str, ...]

    def docs(self) -> list[LareqaDoc]:
        if len(self.doc_langs) == 1:
            return load_lang(self.bench, self.doc_langs[0]).docs
        return [d for lang in self.doc_langs for d in load_lang(self.bench, lang).docs]

    def queries(self) -> list[GenericQuery]:
        answers = [load_lang(self.bench, lang).answer for lang in self.doc_langs]
        return [
            q
            for lang in self.query_langs
            for q in load_lang(self.bench, lang).queries
            if any(parallel_id(q.query_id) in a for a in answers)
        ]

    def qrels(self) -> Iterator[TrecQrel]:
        answers = [load_lang(self.bench, lang).answer for lang in self.doc_langs]
        for q in self.queries():
            pid = parallel_id(q.query_id)
            for a in answers:
                if pid in a:
                    yield TrecQrel(q.query_id, a[pid], 1, "0")


class LareqaDocs(BaseDocs):
    """Docs handler. ``count_hint`` (ir_datasets' ``count_hint``) gives the count from metadata."""

    def __init__(self, sel: Selection, count_hint: Callable[[], int | None] | None = None):
        super().__init__()
        self._sel = sel
        self._count_hint = count_hint

    def docs_iter(self):
        return _ListIter(self._sel.docs())

    def docs_count(self) -> int:
        """From the metadata when known (no file is read), else by parsing the files."""
        count = self._count_hint() if self._count_hint is not None else None
        return count if count is not None else len(self._sel.docs())

    def docs_cls(self):
        return LareqaDoc

    def docs_store(self, field: str = "doc_id") -> _MemoryDocstore:
        return _MemoryDocstore(self._sel.docs())

    def docs_namespace(self) -> str:
        return self._sel.bench.name

    def docs_lang(self) -> str | None:
        return self._sel.doc_langs[0] if len(self._sel.doc_langs) == 1 else None


class LareqaQueries(BaseQueries):
    def __init__(self, sel: Selection):
        super().__init__()
        self._sel = sel

    def queries_iter(self):
        return _ListIter(self._sel.queries())

    def queries_cls(self):
        return GenericQuery

    def queries_store(self) -> _MemoryDocstore:
        """Queries by ``query_id`` (what ``ir_datasets lookup --qid`` asks for)."""
        return _MemoryDocstore(self._sel.queries(), GenericQuery, "query_id")

    def queries_namespace(self) -> str:
        return self._sel.bench.name

    def queries_lang(self) -> str | None:
        return self._sel.query_langs[0] if len(self._sel.query_langs) == 1 else None


class LareqaQrels(BaseQrels):
    def __init__(self, sel: Selection):
        super().__init__()
        self._sel = sel

    def qrels_iter(self):
        return self._sel.qrels()

    def qrels_cls(self):
        return TrecQrel

    def qrels_defs(self) -> dict[int, str]:
        return QRELS_DEFS
