"""Corpora to index, read in a fixed order by position: an ir_datasets id, a JSONL or a TSV file.

``open_corpus(spec)`` gives a :class:`Corpus`: its size and the (docno, text) pairs of any
contiguous range ``[start, stop)``, so processes that each take one range (the shards of
:mod:`pyterrier_hybrid.indexing`) together read every document exactly once, in the same order as
one process would.

- ``irds:ID`` or ``ID``: an ir_datasets id (ours are registered on import of ``datasets_ext``); the
  text is the ``text`` field (``--text-field`` picks another), or the record's ``default_text()``.
- ``FILE.jsonl`` (``.jsonl.gz``): one JSON object per line with the docno under ``docno`` (or
  ``doc_id``, ``_id``, ``id``) and the text under ``text`` (or ``--text-field``); blank lines skipped.
- ``FILE.tsv`` (``.tsv.gz``): ``docno<TAB>text`` per line (the text may contain tabs); a first line
  ``docno<TAB>text`` is a header and skipped.
"""

from __future__ import annotations

import gzip
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .jsonl import read_jsonl

__all__ = ["FILE_SUFFIXES", "Corpus", "open_corpus"]

FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".tsv", ".tsv.gz")
_DOCNO_KEYS = ("docno", "doc_id", "_id", "id")


class Corpus:
    """A corpus read by position. ``name`` identifies it in index metadata (the ir_datasets id, or
    the file's absolute path)."""

    def __init__(self, name: str, kind: str, source: Any, *, text_field: str | None):
        self.name = name
        self.kind = kind  # "irds", "jsonl" or "tsv"
        self._source = source
        self.text_field = text_field
        self._count: int | None = None

    def __repr__(self) -> str:
        return f"Corpus({self.name!r}, kind={self.kind!r})"

    def __len__(self) -> int:
        if self._count is None:
            if self.kind == "irds":
                self._count = int(self._source.docs_count())
            else:
                self._count = sum(1 for _ in self._records())
        return self._count

    def docs(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[str, str]]:
        """(docno, text) of documents ``start`` .. ``stop - 1`` (0-based positions)."""
        stop = len(self) if stop is None else stop
        if not 0 <= start <= stop <= len(self):
            raise ValueError(f"range [{start}, {stop}) is outside the corpus {self.name} of {len(self)} documents")
        if start == stop:
            return
        if self.kind == "irds":
            for doc in self._source.docs_iter()[start:stop]:
                yield str(doc.doc_id), self._irds_text(doc)
        else:
            yield from itertools.islice(self._records(), start, stop)

    def _irds_text(self, doc: Any) -> str:
        if self.text_field is not None:
            if not hasattr(doc, self.text_field):
                raise ValueError(f"the documents of {self.name} have no field {self.text_field!r}; "
                                 f"fields: {', '.join(doc._fields)}")
            return str(getattr(doc, self.text_field))
        if hasattr(doc, "text"):
            return str(doc.text)
        return str(doc.default_text())

    def _records(self) -> Iterator[tuple[str, str]]:
        path: Path = self._source
        if self.kind == "jsonl":
            yield from self._jsonl(path)
            return
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as lines:
            yield from self._tsv(lines)

    def _jsonl(self, path: Path) -> Iterator[tuple[str, str]]:
        field = self.text_field or "text"
        expected = f"an object with a docno (one of {', '.join(_DOCNO_KEYS)}) and a {field!r} field"
        for number, record in read_jsonl(path, expected=expected):
            key = next((k for k in _DOCNO_KEYS if k in record), None)
            if key is None or field not in record:
                raise ValueError(f"{self.name}:{number}: expected {expected}; line {number} has {sorted(record)}")
            yield str(record[key]), str(record[field])

    def _tsv(self, lines: Any) -> Iterator[tuple[str, str]]:
        for number, line in enumerate(lines, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            docno, tab, text = line.partition("\t")
            if not tab:
                raise ValueError(f"{self.name} line {number} has no tab: TSV lines are docno<TAB>text")
            if number == 1 and docno == "docno" and text in ("text", self.text_field):
                continue  # header
            yield docno, text


def open_corpus(spec: str | os.PathLike[str], *, text_field: str | None = None) -> Corpus:
    """The corpus named by ``spec``: a JSONL / TSV file, or an ir_datasets id (``irds:`` prefix optional)."""
    text = str(spec)
    if text.endswith(FILE_SUFFIXES) or os.path.exists(text):
        path = Path(text).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"corpus file {text} does not exist")
        kind = "jsonl" if ".jsonl" in path.name else "tsv" if ".tsv" in path.name else None
        if kind is None:
            raise ValueError(f"corpus file {text}: unknown format; valid suffixes: {', '.join(FILE_SUFFIXES)}")
        return Corpus(str(path), kind, path, text_field=text_field)
    import ir_datasets

    import datasets_ext  # noqa: F401 - registers the XQuAD-R / MLQA-R ids

    name = text.removeprefix("irds:")
    try:
        dataset = ir_datasets.load(name)
    except KeyError:
        raise FileNotFoundError(f"corpus {text!r} is neither a file ({', '.join(FILE_SUFFIXES)}) nor an "
                                f"ir_datasets id (e.g. irds:xquad-r/en-en, irds:mmarco/v2/fr)") from None
    if not dataset.has_docs():
        raise ValueError(f"ir_datasets id {name!r} has no documents")
    return Corpus(name, "irds", dataset, text_field=text_field)
