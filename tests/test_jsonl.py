"""One JSONL reader for corpora and training files: a bad line names the file, the line and what
each line should hold, whichever reader meets it."""

from __future__ import annotations

import gzip
import json

import pytest

from pyterrier_hybrid.corpus import open_corpus
from pyterrier_hybrid.jsonl import read_jsonl
from pyterrier_hybrid.train_data import TrainDataError, from_jsonl


def test_objects_with_their_line_numbers_blank_lines_skipped_gz_read(tmp_path):
    rows = [{"docno": "a", "text": "eins"}, {"docno": "b", "text": "zwei"}]
    (tmp_path / "c.jsonl").write_text(json.dumps(rows[0]) + "\n\n  \n" + json.dumps(rows[1]) + "\n")
    assert list(read_jsonl(tmp_path / "c.jsonl")) == [(1, rows[0]), (4, rows[1])]
    with gzip.open(tmp_path / "c.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows))
    assert list(open_corpus(tmp_path / "c.jsonl.gz").docs()) == [("a", "eins"), ("b", "zwei")]


@pytest.mark.parametrize(("line", "message"), [
    (b'{"docno": "b", "text": ', r"c\.jsonl:2: not valid JSON \(Expecting value at column 24\); expected an object "
                                 r"with a docno \(one of docno, doc_id, _id, id\) and a 'text' field"),
    (b'["b", "zwei"]', r"c\.jsonl:2: expected an object with a docno .* and a 'text' field, got a JSON array"),
    (b'{"docno": "b", "text": "zw\xffei"}', r"c\.jsonl:2: not UTF-8 \(byte 0xff at column 27\)"),
])
def test_a_bad_corpus_line_names_file_line_and_what_was_expected(tmp_path, line, message):
    (tmp_path / "c.jsonl").write_bytes(b'{"docno": "a", "text": "eins"}\n' + line + b"\n")
    corpus = open_corpus(tmp_path / "c.jsonl")
    with pytest.raises(ValueError, match=message):
        list(corpus.docs())


def test_training_files_read_by_the_same_reader(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('[1, 2]\n')
    with pytest.raises(TrainDataError, match=r"train\.jsonl:1: expected an object with keys 'id' and 'langs', "
                                             r"got a JSON array"):
        from_jsonl(path)
    path.write_text('{"id": 1, "langs": {"en": {"query": "q", "positive": "p"}}}\n{"id": 2')
    with pytest.raises(TrainDataError, match=r"train\.jsonl:2: not valid JSON \(.*\); expected an object with keys "
                                             r"'id' and 'langs'"):
        from_jsonl(path)
