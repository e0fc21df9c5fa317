"""Training sources: LAReQA (real files), ir_datasets parallel ids (tiny registered datasets),
JSONL, language filter, validation split, leakage warning."""

from __future__ import annotations

import json
import logging
from collections import Counter

import ir_datasets
import pytest

from pyterrier_hybrid.train_data import (
    DataLeakageWarning,
    TrainDataError,
    check_leakage,
    filter_languages,
    from_irds_parallel,
    from_jsonl,
    from_lareqa,
    load_source,
    split_validation,
    to_jsonl,
)


@pytest.fixture(scope="module")
def mlqa(data_dir):
    return from_lareqa("mlqa-r")


def test_mlqa_r_counts(mlqa):
    assert len(mlqa) == 1148
    assert Counter(len(ex.langs) for ex in mlqa) == {4: 820, 3: 263, 2: 65}
    per_lang = Counter(lang for ex in mlqa for lang in ex.langs)
    assert per_lang == {"en": 1148, "ar": 517, "de": 512, "vi": 511, "hi": 507, "zh": 504, "es": 500}
    assert len({ex.pid for ex in mlqa}) == 1148


def test_xquad_r_counts(data_dir):
    ex = from_lareqa("xquad-r")
    assert len(ex) == 1190
    assert all(len(e.langs) == 11 for e in ex)


@pytest.mark.parametrize("lang", ["de", "zh"])
def test_positives_are_the_qrels_and_negatives_their_paragraph(mlqa, lang):
    ds = ir_datasets.load(f"mlqa-r/{lang}-{lang}")
    docs = {d.doc_id: d for d in ds.docs_iter()}
    rel = {q.query_id.partition("_")[2]: q.doc_id for q in ds.qrels_iter()}
    queries = {q.query_id.partition("_")[2]: q.text for q in ds.queries_iter()}
    checked = 0
    for ex in mlqa:
        if lang not in ex.langs:
            continue
        item = ex.langs[lang]
        assert item.positive_id == rel[ex.pid]
        assert item.positive == docs[item.positive_id].text
        assert item.query == queries[ex.pid]
        paragraph = item.positive_id.rsplit("_", 1)[0]
        siblings = {d.text for d in docs.values() if d.doc_id.rsplit("_", 1)[0] == paragraph} if checked < 50 else None
        if siblings is not None:
            assert set(item.negatives) == siblings - {item.positive}
        assert item.positive not in item.negatives
        checked += 1
    assert checked == len(queries)


def test_language_filter(mlqa, data_dir):
    sub = from_lareqa("mlqa-r", languages=["ar", "de"])
    assert all(set(ex.langs) <= {"ar", "de"} for ex in sub)
    assert Counter(lang for ex in sub for lang in ex.langs) == {"ar": 517, "de": 512}
    assert [ex.pid for ex in filter_languages(mlqa, ["ar", "de"])] == sorted(
        [ex.pid for ex in sub], key=[ex.pid for ex in mlqa].index)
    assert len(load_source("mlqa-r", languages=["zh"])) == 504
    with pytest.raises(TrainDataError, match="no language th"):
        from_lareqa("mlqa-r", languages=["th"])
    with pytest.raises(TrainDataError, match="no training example has language xx"):
        filter_languages(mlqa, ["xx"])


def test_jsonl_round_trip(mlqa, tmp_path):
    path = to_jsonl(mlqa[:20], tmp_path / "train.jsonl")
    back = from_jsonl(path)
    assert back == mlqa[:20]
    assert load_source(str(path), languages=["en"])[0].langs.keys() == {"en"}
    minimal = tmp_path / "min.jsonl"
    minimal.write_text(json.dumps({"id": 7, "langs": {"en": {"query": "q", "positive": "p"}}}) + "\n\n")
    (ex,) = from_jsonl(minimal)
    assert ex.pid == "7" and ex.langs["en"].negatives == () and ex.langs["en"].positive_id == "7:en"


@pytest.mark.parametrize("line, message", [
    ('{"id": 1, "langs": {"en": {"query": "q"', r"bad\.jsonl:2: not valid JSON"),
    ('{"langs": {}}', r"bad\.jsonl:2: expected an object with keys 'id' and 'langs'"),
    ('{"id": 2, "langs": {"en": {"query": "", "positive": "p"}}}', r":2: langs\['en'\]\.query must be a non-empty"),
    ('{"id": 2, "langs": {"en": {"query": "q", "positive": "p", "negatives": "n"}}}', r":2: .*negatives must be a list"),
    ('{"id": 1, "langs": {"en": {"query": "q", "positive": "p"}}}', r":2: duplicate id '1' \(first on line 1\)"),
])
def test_jsonl_malformed_line(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": 1, "langs": {"en": {"query": "q", "positive": "p"}}}) + "\n" + line + "\n")
    with pytest.raises(TrainDataError, match=message):
        from_jsonl(path)


def _register_tiny_mmarco(tmp_path):
    """test-mmarco/v2/{en,de}/train: queries, docs and docpairs sharing ids (de lacks q3 and d5)."""
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import TsvDocPairs, TsvDocs, TsvQueries
    from ir_datasets.util import LocalDownload

    texts = {
        "en": ({"q1": "what is a cat", "q2": "capital of france", "q3": "boiling point of water"},
               {"d1": "a cat is an animal", "d2": "dogs bark", "d3": "paris is the capital of france",
                "d4": "berlin is in germany", "d5": "water boils at 100 degrees", "d6": "ice is cold"}),
        "de": ({"q1": "was ist eine katze", "q2": "hauptstadt von frankreich"},
               {"d1": "eine katze ist ein tier", "d2": "hunde bellen", "d3": "paris ist die hauptstadt frankreichs",
                "d4": "berlin liegt in deutschland", "d6": "eis ist kalt"}),
    }
    pairs = [("q1", "d1", "d2"), ("q1", "d1", "d4"), ("q2", "d3", "d4"), ("q3", "d5", "d6"), ("q3", "d5", "d2")]
    for lang, (queries, docs) in texts.items():
        d = tmp_path / lang
        d.mkdir()
        (d / "queries.tsv").write_text("".join(f"{k}\t{v}\n" for k, v in queries.items()))
        (d / "docs.tsv").write_text("".join(f"{k}\t{v}\n" for k, v in docs.items()))
        (d / "pairs.tsv").write_text("".join("\t".join(p) + "\n" for p in pairs))
        name = f"test-mmarco/v2/{lang}/train"
        if name in ir_datasets.registry._registered:
            del ir_datasets.registry._registered[name]
        ir_datasets.registry.register(name, Dataset(
            TsvDocs(LocalDownload(d / "docs.tsv"), namespace=f"test-mmarco-{lang}-{tmp_path.name}", lang=lang),
            TsvQueries(LocalDownload(d / "queries.tsv"), lang=lang),
            TsvDocPairs(LocalDownload(d / "pairs.tsv")),
        ))


def test_irds_parallel_source(tmp_path):
    _register_tiny_mmarco(tmp_path)
    ex = from_irds_parallel("test-mmarco/v2/{lang}/train", ["en", "de"])
    assert [e.pid for e in ex] == ["q1", "q2", "q3"]
    q1 = ex[0]
    assert q1.langs["en"].query == "what is a cat" and q1.langs["de"].query == "was ist eine katze"
    assert q1.langs["en"].positive == "a cat is an animal" and q1.langs["de"].positive == "eine katze ist ein tier"
    assert q1.langs["en"].negatives == ("dogs bark", "berlin is in germany")
    assert q1.langs["de"].negatives == ("hunde bellen", "berlin liegt in deutschland")
    assert q1.langs["en"].positive_id == q1.langs["de"].positive_id == "d1"
    assert set(ex[2].langs) == {"en"}  # de lacks q3 / d5
    assert [e.pid for e in load_source("irds:test-mmarco/v2/{lang}/train", languages=["en", "de"],
                                       max_examples=2)] == ["q1", "q2"]
    with pytest.raises(TrainDataError, match="needs the list of languages"):
        load_source("irds:test-mmarco/v2/{lang}/train")
    with pytest.raises(TrainDataError, match="must contain '{lang}'"):
        from_irds_parallel("test-mmarco/v2/en/train", ["en"])
    with pytest.raises(TrainDataError, match="unknown ir_datasets id 'test-mmarco/v2/fr/train'"):
        from_irds_parallel("test-mmarco/v2/{lang}/train", ["en", "fr"])


def test_split_validation(mlqa):
    train, val = split_validation(mlqa, 0.1, seed=0)
    assert len(val) == 115 and len(train) == 1148 - 115
    assert not {e.pid for e in train} & {e.pid for e in val}
    assert split_validation(mlqa, 0.1, seed=0) == (train, val)
    assert split_validation(mlqa, 0.1, seed=1)[1] != val
    assert split_validation(mlqa, 0.0) == (list(mlqa), [])
    with pytest.raises(TrainDataError, match=r"in \[0, 1\)"):
        split_validation(mlqa, 1.0)


def test_leakage_warning(caplog):
    with caplog.at_level(logging.WARNING), pytest.warns(DataLeakageWarning, match="DATA LEAKAGE"):
        assert check_leakage("mlqa-r", "mlqa-r")
    assert "DATA LEAKAGE" in caplog.text
    with pytest.warns(DataLeakageWarning):
        assert check_leakage("xquad-r", "irds:xquad-r/de-en")
    assert not check_leakage("mlqa-r", "xquad-r")
    assert not check_leakage("train.jsonl", "xquad-r")


def test_unknown_source():
    with pytest.raises(TrainDataError, match="unknown training source 'nope'.*mlqa-r, xquad-r, irds:TEMPLATE"):
        load_source("nope")
    with pytest.raises(TrainDataError, match="does not exist"):
        load_source("missing.jsonl")
