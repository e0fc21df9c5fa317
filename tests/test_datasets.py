"""Integration tests of the XQuAD-R / MLQA-R ir_datasets entries, on the real files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import ir_datasets
import pytest
from ir_datasets.formats import GenericQuery, TrecQrel

import datasets_ext
from datasets_ext import LareqaDataError, LareqaDoc, UnknownDatasetError, lang_of, parallel_id
from datasets_ext.lareqa import Benchmark

XQ_LANGS = "ar de el en es hi ru th tr vi zh".split()
ML_LANGS = "ar de en es hi vi zh".split()
XQ_CANDIDATES = dict(zip(XQ_LANGS, [1222, 1276, 1234, 1180, 1215, 1244, 1219, 852, 1167, 1209, 1196], strict=True))
ML_QUESTIONS = dict(zip(ML_LANGS, [517, 512, 1148, 500, 507, 511, 504], strict=True))
ML_CANDIDATES = dict(zip(ML_LANGS, [2545, 2362, 6264, 1787, 2426, 2828, 2322], strict=True))
# MLQA-R questions of language q (row) whose id also exists in language d (column).
ML_PAIR_QUERIES = {
    "ar": [517, 207, 517, 161, 186, 163, 188],
    "de": [207, 512, 512, 196, 163, 182, 190],
    "en": [517, 512, 1148, 500, 507, 511, 504],
    "es": [161, 196, 500, 500, 187, 189, 161],
    "hi": [186, 163, 507, 187, 507, 177, 189],
    "vi": [163, 182, 511, 189, 177, 511, 184],
    "zh": [188, 190, 504, 161, 189, 184, 504],
}


def counts(dsid: str) -> tuple[int, int, int]:
    ds = ir_datasets.load(dsid)
    return ds.docs_count(), len(list(ds.queries_iter())), len(list(ds.qrels_iter()))


def test_xquad_r_pool_counts():
    assert counts("xquad-r") == (13_014, 13_090, 143_990)
    per_query = Counter(q.query_id for q in ir_datasets.load("xquad-r").qrels_iter())
    assert set(per_query.values()) == {11}


@pytest.mark.parametrize("q", XQ_LANGS)
def test_xquad_r_pairs_and_multi_counts(q):
    for d in XQ_LANGS:
        assert counts(f"xquad-r/{q}-{d}") == (XQ_CANDIDATES[d], 1190, 1190), (q, d)
    assert counts(f"xquad-r/{q}-multi") == (13_014, 1190, 1190 * 11)
    per_query = Counter(r.query_id for r in ir_datasets.load(f"xquad-r/{q}-multi").qrels_iter())
    assert set(per_query.values()) == {11}
    assert {lang_of(r.doc_id) for r in ir_datasets.load(f"xquad-r/{q}-multi").qrels_iter()} == set(XQ_LANGS)


def test_mlqa_r_pool_counts():
    assert counts("mlqa-r") == (20_534, 4_199, 15_747)
    # ids exist in 2 to 4 languages: 820 in 4, 263 in 3, 65 in 2 (shared/data/README.md)
    langs_per_id = Counter(parallel_id(q.query_id) for q in ir_datasets.load("mlqa-r").queries_iter())
    assert Counter(langs_per_id.values()) == {4: 820, 3: 263, 2: 65}


@pytest.mark.parametrize("q", ML_LANGS)
def test_mlqa_r_pair_counts(q):
    for d, n in zip(ML_LANGS, ML_PAIR_QUERIES[q], strict=True):
        assert counts(f"mlqa-r/{q}-{d}") == (ML_CANDIDATES[d], n, n), (q, d)
    ds = ir_datasets.load(f"mlqa-r/{q}-multi")
    assert len(list(ds.queries_iter())) == ML_QUESTIONS[q]
    assert ds.docs_count() == 20_534


def test_first_and_last_records():
    ds = ir_datasets.load("xquad-r/ar-en")
    docs, queries, qrels = list(ds.docs_iter()), list(ds.queries_iter()), list(ds.qrels_iter())
    assert docs[0].doc_id == "en_0_0" and docs[0].lang == "en"
    assert docs[0].text == (
        "The Panthers defense gave up just 308 points, ranking sixth in the league, while also leading "
        "the NFL in interceptions with 24 and boasting four Pro Bowl selections."
    )
    assert docs[0].context.startswith(docs[0].text + " Pro Bowl defensive tackle Kawann Short")
    assert docs[-1].doc_id == "en_239_2"
    assert docs[-1].text.startswith("The stress tensor accounts for forces that cause all strains")
    assert queries[0] == GenericQuery("ar_56beb4343aeaaa14008c925b", "كم نقطة تخلى عنها دفاع البانثرز؟")
    assert queries[-1] == GenericQuery(
        "ar_5737a25ac3c5551400e51f54", "ما الذي يتضمن شروط الضغط عند حساب المساحة في الحجم؟"
    )
    assert qrels[0] == TrecQrel("ar_56beb4343aeaaa14008c925b", "en_0_0", 1, "0")
    assert qrels[-1] == TrecQrel("ar_5737a25ac3c5551400e51f54", "en_239_1", 1, "0")

    ds = ir_datasets.load("mlqa-r/de-hi")
    docs, queries, qrels = list(ds.docs_iter()), list(ds.queries_iter()), list(ds.qrels_iter())
    assert (docs[0].doc_id, docs[-1].doc_id) == ("hi_0_0", "hi_424_5")
    assert queries[0] == GenericQuery(
        "de_544f3863a35735cd19c101c42113dce8869fd976", "Für welche Daten wurde die Anlage gebucht?"
    )
    assert queries[-1] == GenericQuery(
        "de_1f79f28190b12342fc7a39cea0202d33af7488c9", "Was geschag mit gefangen genommenen Soldaten?"
    )
    assert qrels[0] == TrecQrel("de_544f3863a35735cd19c101c42113dce8869fd976", "hi_385_2", 1, "0")
    assert qrels[-1] == TrecQrel("de_1f79f28190b12342fc7a39cea0202d33af7488c9", "hi_421_6", 1, "0")

    ds = ir_datasets.load("mlqa-r")
    docs, queries = list(ds.docs_iter()), list(ds.queries_iter())
    assert (docs[0].doc_id, docs[-1].doc_id) == ("ar_0_0", "zh_442_1")
    assert queries[-1] == GenericQuery("zh_c555e59e9cf74869aaf94cbeaf932cd1fd89e55e", "哪个国王？")

    ds = ir_datasets.load("xquad-r/en-multi")
    qrels = list(ds.qrels_iter())
    assert qrels[0] == TrecQrel("en_56beb4343aeaaa14008c925b", "ar_0_0", 1, "0")
    assert qrels[-1] == TrecQrel("en_5737a25ac3c5551400e51f54", "zh_239_1", 1, "0")


def test_relevant_sentence_contains_the_answer(data_dir):
    raw = json.loads((data_dir / "xquad-r" / "de.json").read_text(encoding="utf-8"))
    para = raw["data"][0]["paragraphs"][0]
    qa = para["qas"][0]
    store = ir_datasets.load("xquad-r/en-de").docs_store()
    qrel = next(r for r in ir_datasets.load("xquad-r/en-de").qrels_iter() if parallel_id(r.query_id) == qa["id"])
    assert qa["answers"][0]["text"] in store.get(qrel.doc_id).text


def test_records_store_and_ids():
    ds = ir_datasets.load("xquad-r/de-th")
    assert ds.docs_cls() is LareqaDoc and LareqaDoc._fields == ("doc_id", "text", "context", "lang")
    assert ds.queries_cls()._fields == ("query_id", "text")
    assert ds.queries_lang() == "de" and ds.docs_lang() == "th"
    assert ir_datasets.load("xquad-r").queries_lang() is None
    doc = ds.docs_store().get("th_10_1")
    assert doc.doc_id == "th_10_1" and doc.lang == "th" and doc.text in doc.context
    assert doc.default_text() == doc.text
    assert [d.doc_id for d in ds.docs_iter()[5:7]] == [d.doc_id for d in list(ds.docs_iter())[5:7]]
    assert lang_of("zh_56beb4343aeaaa14008c925b") == "zh" and lang_of("hi_424_5") == "hi"
    assert parallel_id("zh_56beb4343aeaaa14008c925b") == "56beb4343aeaaa14008c925b"
    with pytest.raises(ValueError, match="not a LAReQA id"):
        lang_of("nounderscore")
    pool = ir_datasets.load("xquad-r")
    ids = [d.doc_id for d in pool.docs_iter()] + [q.query_id for q in pool.queries_iter()]
    assert len(ids) == len(set(ids))


def test_documentation():
    for dsid in ("xquad-r", "xquad-r/ar-en", "mlqa-r/de-multi"):
        doc = ir_datasets.load(dsid).documentation()
        assert doc["desc"] and "roy-etal-2020-lareqa" in doc["bibtex"]
    assert "CC BY-SA 4.0" in ir_datasets.load("xquad-r/ar-en").documentation()["license"]
    assert "CC BY-NC 4.0" in ir_datasets.load("mlqa-r").documentation()["license"]
    assert "Artetxe" in ir_datasets.load("xquad-r").documentation()["bibtex"]
    assert "MLQA" in ir_datasets.load("mlqa-r/en-de").documentation()["bibtex"]


@pytest.mark.parametrize(
    ("dsid", "expected"),
    [("xquad-r/xx-en", "ar, de, el"), ("mlqa-r/th-en", "ar, de, en, es, hi, vi, zh"), ("xquad-r/ar", "xquad-r/{q}-{d}")],
)
def test_unknown_ids(dsid, expected):
    with pytest.raises(UnknownDatasetError) as e:
        ir_datasets.load(dsid)
    assert dsid in str(e.value) and expected in str(e.value)
    with pytest.raises(UnknownDatasetError, match="valid: xquad-r, mlqa-r"):
        datasets_ext.get_benchmark("tydi-r")
    with pytest.raises(UnknownDatasetError, match="no language 'th'"):
        datasets_ext.MLQA_R.path("th")


# ------------------------------------------------------------ sources, offline, bad input


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    home = tmp_path / "irds"
    monkeypatch.setenv("IR_DATASETS_HOME", str(home))
    return home


def _no_network(monkeypatch):
    def refuse(self, *a, **k):
        raise AssertionError(f"network access attempted: {self.url}")

    monkeypatch.setattr(ir_datasets.util.download.RequestsDownload, "stream", refuse)
    monkeypatch.setattr(ir_datasets.util.download.RequestsDownload, "__iter__", refuse)


def test_offline_dir_is_used_before_network(fresh_cache, data_dir, monkeypatch):
    _no_network(monkeypatch)
    monkeypatch.setenv("LAREQA_DATA_DIR", str(data_dir))
    path = datasets_ext.XQUAD_R.path("vi")
    assert path == fresh_cache / "xquad-r" / "vi.json"
    assert path.read_bytes() == (data_dir / "xquad-r" / "vi.json").read_bytes()


def test_upstream_download_uses_pinned_url(fresh_cache, data_dir, monkeypatch):
    monkeypatch.delenv("LAREQA_DATA_DIR")
    requested = []

    def fake_iter(self):
        requested.append(self.url)
        yield (data_dir / "mlqa-r" / "es.json").read_bytes()

    monkeypatch.setattr(ir_datasets.util.download.RequestsDownload, "__iter__", fake_iter)
    path = datasets_ext.MLQA_R.path("es")
    assert requested == [
        "https://raw.githubusercontent.com/google-research-datasets/lareqa/"
        "343180b90dcd00aa50a3fd2832787ed6b8860256/mlqa-dev-r/es.json"
    ]
    assert path.read_bytes() == (data_dir / "mlqa-r" / "es.json").read_bytes()


def _copy_data(data_dir: Path, dest: Path, bench: str, lang: str) -> Path:
    (dest / bench).mkdir(parents=True)
    return Path(shutil.copy(data_dir / bench / f"{lang}.json", dest / bench / f"{lang}.json"))


def test_md5_mismatch_and_truncation_leave_nothing(fresh_cache, data_dir, tmp_path, monkeypatch):
    _no_network(monkeypatch)
    local = tmp_path / "local"
    copy = _copy_data(data_dir, local, "xquad-r", "en")
    monkeypatch.setenv("LAREQA_DATA_DIR", str(local))
    copy.write_bytes(copy.read_bytes().replace(b"Panthers", b"Panters!", 1))
    with pytest.raises(LareqaDataError, match="md5 mismatch for xquad-r/en.json"):
        datasets_ext.XQUAD_R.path("en")
    copy.write_bytes((data_dir / "xquad-r" / "en.json").read_bytes()[:1000])
    with pytest.raises(LareqaDataError, match="corrupt or truncated"):
        ir_datasets.load("xquad-r/ar-en").docs_count()
    assert not list(fresh_cache.rglob("*.json*")), "a partial or corrupt file was left in the cache"


def test_missing_file_in_data_dir(fresh_cache, tmp_path, monkeypatch):
    _no_network(monkeypatch)
    monkeypatch.setenv("LAREQA_DATA_DIR", str(tmp_path))
    with pytest.raises(LareqaDataError, match=r"has no mlqa-r/zh.json.*mlqa-r/\{lang\}.json"):
        datasets_ext.MLQA_R.path("zh")


def test_corrupt_cache_is_fetched_again(fresh_cache, data_dir, monkeypatch):
    _no_network(monkeypatch)
    monkeypatch.setenv("LAREQA_DATA_DIR", str(data_dir))
    path = datasets_ext.XQUAD_R.path("tr")
    path.write_bytes(b"{}")
    assert datasets_ext.XQUAD_R.path("tr").read_bytes() == (data_dir / "xquad-r" / "tr.json").read_bytes()


def test_malformed_file(fresh_cache, tmp_path, monkeypatch):
    import hashlib

    _no_network(monkeypatch)
    body = json.dumps({"data": [{"paragraphs": [{"context": "x", "qas": []}]}]}).encode()
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "en.json").write_bytes(body)
    monkeypatch.setenv("LAREQA_DATA_DIR", str(tmp_path))
    tiny = Benchmark("tiny", ("en",), "0" * 40, "tiny", {"en": hashlib.md5(body).hexdigest()}, "", "", "")
    with pytest.raises(LareqaDataError, match=r"not a valid tiny file \(KeyError: 'sentence_breaks'\)"):
        datasets_ext.load_lang(tiny, "en")


# ------------------------------------------------------------ ecosystem entry points


def test_import_is_light():
    code = "import sys, datasets_ext; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pyterrier_path():
    code = """
import pyterrier as pt
ds = pt.get_dataset("irds:xquad-r/ar-en")
topics, qrels = ds.get_topics(), ds.get_qrels()
docs = list(ds.get_corpus_iter(verbose=False))
print(list(topics.columns), len(topics), list(qrels.columns), len(qrels), len(docs), sorted(docs[0]))
"""
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == (
        "['qid', 'query'] 1190 ['qid', 'docno', 'label', 'iteration'] 1190 1180 "
        "['context', 'docno', 'lang', 'text']"
    )


def test_ir_datasets_cli():
    out = subprocess.run(
        [sys.executable, "-m", "datasets_ext", "export", "mlqa-r/ar-de", "qrels"],
        capture_output=True, text=True, check=True,
    )
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 207 and lines[0].split()[2].startswith("de_")
