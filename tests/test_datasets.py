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
    """Counts by parsing the files; the stored counts (ir_datasets metadata) must agree."""
    ds = ir_datasets.load(dsid)
    parsed = len(list(ds.docs_iter())), len(list(ds.queries_iter())), len(list(ds.qrels_iter()))
    assert (ds.docs_count(), ds.queries_count(), ds.qrels_count()) == parsed, dsid
    return parsed


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
        list(ir_datasets.load("xquad-r/ar-en").docs_iter())
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


def test_download_failure_names_file_url_and_variable(fresh_cache, monkeypatch):
    # offline, no LAREQA_DATA_DIR, nothing cached: requests' ConnectionError becomes an error saying what to do
    requests = ir_datasets.lazy_libs.requests()
    monkeypatch.delenv("LAREQA_DATA_DIR")

    def unreachable(self):
        raise requests.exceptions.ConnectionError(f"Failed to resolve host of {self.url}")
        yield  # a generator, like the real __iter__

    monkeypatch.setattr(ir_datasets.util.download.RequestsDownload, "__iter__", unreachable)
    with pytest.raises(LareqaDataError) as e:
        datasets_ext.XQUAD_R.path("ar")
    message = str(e.value)
    assert "cannot download xquad-r/ar.json from " + datasets_ext.XQUAD_R.url("ar") in message
    assert "ConnectionError" in message and "Set LAREQA_DATA_DIR" in message
    assert str(fresh_cache / "xquad-r" / "ar.json") in message
    assert isinstance(e.value.__cause__, requests.exceptions.ConnectionError)
    with pytest.raises(LareqaDataError, match=r"cannot download mlqa-r/\w\w\.json from https://.*LAREQA_DATA_DIR"):
        list(ir_datasets.load("mlqa-r/de-hi").queries_iter())
    assert not list(fresh_cache.rglob("*.json*")), "a partial file was left in the cache"


def test_counts_read_no_file(fresh_cache, monkeypatch):
    # like ir_datasets' own datasets, counts come from stored metadata: no file, no network
    monkeypatch.delenv("LAREQA_DATA_DIR")

    def refuse(bench, lang):
        raise AssertionError(f"{bench.name}/{lang}.json was read to count")

    monkeypatch.setattr(datasets_ext.lareqa, "_fetch", refuse)
    ds = ir_datasets.load("mlqa-r/de-hi")
    n = ML_PAIR_QUERIES["de"][ML_LANGS.index("hi")]
    assert (ds.docs_count(), ds.queries_count(), ds.qrels_count()) == (ML_CANDIDATES["hi"], n, n)
    assert ds.docs_handler().docs_count() == ML_CANDIDATES["hi"]
    pool = ir_datasets.load("xquad-r")
    assert (pool.docs_count(), pool.queries_count(), pool.qrels_count()) == (13_014, 13_090, 143_990)
    assert ir_datasets.load("xquad-r/th-multi").metadata() == {
        "docs": {"count": 13_014}, "queries": {"count": 1190}, "qrels": {"count": 1190 * 11}
    }
    with pytest.raises(AssertionError, match="was read to count"):
        list(ds.docs_iter())  # the records themselves still come from the files


def test_stored_counts_equal_counts_from_files():
    # metadata.json (package data, read through pkgutil as ir_datasets reads its own) == the real files
    import pkgutil

    from datasets_ext._metadata import compute_metadata, dumps
    from datasets_ext._registry import dataset_ids

    stored = json.loads(pkgutil.get_data("datasets_ext", "metadata.json"))
    computed = compute_metadata(list(datasets_ext.BENCHMARKS.values()))
    assert computed == stored
    assert dumps(computed) == pkgutil.get_data("datasets_ext", "metadata.json").decode()
    assert list(stored) == [i for b in datasets_ext.BENCHMARKS.values() for i in dataset_ids(b)]
    assert len(stored) == 2 + 11 * 12 + 7 * 8


def test_stored_counts_are_package_data():
    # a wheel only carries metadata.json if [tool.setuptools.package-data] names it
    import fnmatch

    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["datasets_ext"]
    assert any(fnmatch.fnmatch("metadata.json", p) for p in patterns), (
        f"pyproject.toml [tool.setuptools.package-data] datasets_ext = {patterns} misses metadata.json"
    )


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
    out = subprocess.run(
        [sys.executable, "-m", "datasets_ext", "export", "mlqa-r/ar-de", "docs", "--format", "jsonl"],
        capture_output=True, text=True, check=True,
    )
    lines = out.stdout.split("\n")[:-1]
    assert len(lines) == ML_CANDIDATES["de"] and "Skipping" not in out.stderr
    assert all(json.loads(line)["text"] for line in lines)


# ------------------------------------------------------------ ir_datasets' CLI (export, lookup)


def _raw(data_dir: Path, bench: str, lang: str) -> list[dict]:
    """The paragraphs of a benchmark file, in file order, read without datasets_ext."""
    data = json.loads((data_dir / bench / f"{lang}.json").read_text(encoding="utf-8"))["data"]
    return [para for article in data for para in article["paragraphs"]]


def _tsv(value) -> str:
    """What ir_datasets' TSV exporter writes for a field (tabs and line breaks become spaces)."""
    return str(value).replace("\t", " ").replace("\n", " ").replace("\r", " ")


def _cli(capsys, *argv: str) -> list[str]:
    from datasets_ext.__main__ import main

    capsys.readouterr()
    main(argv)
    out = capsys.readouterr().out
    assert out.endswith("\n")
    return out[:-1].split("\n")  # not splitlines(): texts may hold U+2028, U+0085


def test_record_fields_have_real_types():
    # ir_datasets' exporters and PyTerrier's text loader read the annotations and need real types
    assert LareqaDoc.__annotations__ == {"doc_id": str, "text": str, "context": str, "lang": str}
    ds = ir_datasets.load("xquad-r/ar-en")
    for cls in (ds.docs_cls(), ds.queries_cls(), ds.qrels_cls()):
        assert all(t in (str, int) for t in cls.__annotations__.values()), cls.__annotations__


@pytest.mark.parametrize("fmt", ["tsv", "jsonl"])
def test_export_docs(fmt, capsys, data_dir):
    paragraphs = _raw(data_dir, "xquad-r", "en")
    first = {"doc_id": "en_0_0", "text": paragraphs[0]["sentences"][0], "context": paragraphs[0]["context"],
             "lang": "en"}
    last_id = f"en_{len(paragraphs) - 1}_{len(paragraphs[-1]['sentences']) - 1}"
    lines = _cli(capsys, "export", "xquad-r/ar-en", "docs", "--format", fmt)
    assert len(lines) == ir_datasets.load("xquad-r/ar-en").docs_count()
    assert len(lines) == sum(len(p["sentences"]) for p in paragraphs)
    if fmt == "jsonl":
        records = [json.loads(line) for line in (lines[0], lines[-1])]
        assert records[0] == first and records[1]["doc_id"] == last_id
        assert records[1]["text"] == paragraphs[-1]["sentences"][-1]
    else:
        assert lines[0].split("\t") == [_tsv(v) for v in first.values()]
        assert lines[-1].split("\t")[0] == last_id
    fields = [json.loads(line) for line in lines] if fmt == "jsonl" else [line.split("\t") for line in lines]
    assert all(len(f) == 4 and (f["text"] if fmt == "jsonl" else f[1]) for f in fields)


def test_export_queries_and_qrels(capsys, data_dir):
    ds = ir_datasets.load("xquad-r/ar-en")
    qa = _raw(data_dir, "xquad-r", "ar")[0]["qas"][0]
    first_query = {"query_id": f"ar_{qa['id']}", "text": qa["question"]}
    en = _raw(data_dir, "xquad-r", "en")[0]
    start = next(q for q in en["qas"] if q["id"] == qa["id"])["answers"][0]["answer_start"]
    sentence = next(i for i, (a, b) in enumerate(en["sentence_breaks"]) if a <= start < b)
    first_qrel = {"query_id": f"ar_{qa['id']}", "doc_id": f"en_0_{sentence}", "relevance": 1, "iteration": "0"}

    lines = _cli(capsys, "export", "xquad-r/ar-en", "queries", "--format", "jsonl")
    assert len(lines) == ds.queries_count() and json.loads(lines[0]) == first_query
    lines = _cli(capsys, "export", "xquad-r/ar-en", "queries")  # tsv
    assert len(lines) == ds.queries_count() and lines[0].split("\t") == [_tsv(v) for v in first_query.values()]
    lines = _cli(capsys, "export", "xquad-r/ar-en", "qrels", "--format", "jsonl")
    assert len(lines) == ds.qrels_count() and json.loads(lines[0]) == first_qrel
    lines = _cli(capsys, "export", "xquad-r/ar-en", "qrels")  # trec
    assert len(lines) == ds.qrels_count() and lines[0] == f"ar_{qa['id']} 0 en_0_{sentence} 1"


def test_lookup(capsys, data_dir):
    paragraphs = _raw(data_dir, "xquad-r", "en")
    lines = _cli(capsys, "lookup", "xquad-r/ar-en", "--format", "jsonl", "en_0_1", "en_99_0", "xx_0_0")
    assert [json.loads(line) for line in lines] == [
        {"doc_id": f"en_{p}_{s}", "text": paragraphs[p]["sentences"][s], "context": paragraphs[p]["context"],
         "lang": "en"}
        for p, s in ((0, 1), (99, 0))
    ]  # the unknown id is skipped with a warning
    qa = _raw(data_dir, "xquad-r", "ar")[5]["qas"][1]
    lines = _cli(capsys, "lookup", "--qid", "xquad-r/ar-en", f"ar_{qa['id']}")
    assert lines == [f"ar_{qa['id']}\t{_tsv(qa['question'])}"]
