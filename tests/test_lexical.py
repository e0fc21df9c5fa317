"""BM25 (PISA) as a study system and a PyTerrier retriever, on the real XQuAD-R files."""

from __future__ import annotations

import ir_datasets
import numpy as np
import pyterrier as pt
import pytest
from ir_measures import AP, R

from pyterrier_hybrid import evaluate
from pyterrier_hybrid.lexical import BM25, analyse

pytest.importorskip("pyterrier_pisa")  # the bm25 extra (part of the test extra)


def _first_doc(lang: str) -> str:
    return next(iter(ir_datasets.load(f"xquad-r/{lang}-{lang}").docs_iter())).text


def test_analysis_per_language():
    zh, ar, es, en = (_first_doc(lang) for lang in ("zh", "ar", "es", "en"))
    # PISA's own tokenizer keeps ASCII only: Chinese and Arabic sentences shrink to their numbers
    assert set(analyse(zh, "zh", analyser="pisa")) <= {"308", "24", "nfl"}
    assert set(analyse(ar, "ar", analyser="pisa")) <= {"308", "24"}
    assert "adem" in analyse(es, "es", analyser="pisa")  # además cut at its accent
    # ours: Unicode words, Han as character bigrams, English stemmed without stop words (PISA's analyser)
    han = analyse(zh, "zh")
    assert len(han) > 20 and all(len(t) <= 2 for t in han if not t.isascii())
    assert len(analyse(ar, "ar")) > 20 and "además" in analyse(es, "es")
    assert "defens" in analyse(en, "en") and "the" not in analyse(en, "en")


@pytest.fixture(scope="module")
def bm25_study():
    return evaluate([BM25(), BM25(analyser="pisa")], limit_queries=20, verbose=False)


def test_study_rows_and_weak_tokenisation(bm25_study):
    pairs = bm25_study.pairs()
    assert set(pairs.setting) == {"mono", "cross", "multi"}
    assert len(pairs[pairs.system == "BM25"]) == 11 * 11 + 11  # every pair and every multilingual pool
    mono = bm25_study.by_language()["mono"]
    assert mono["BM25", "zh"] > 0.5 and mono["BM25[pisa]", "zh"] < 0.3  # Han bigrams vs ASCII-only tokens
    assert mono["BM25", "en"] > 0.6
    assert bm25_study.summary().loc["BM25", "rank_distance"] > 0


@pytest.mark.parametrize("dsid", ["xquad-r/zh-multi", "xquad-r/de-en"])
def test_study_equals_the_pyterrier_retriever(bm25_study, dsid):
    # the study's lexical path == pt.Experiment on BM25().retriever(...): measures of a truncated run,
    # RankDistance with missing answers at depth + 1 on both paths
    ds = pt.get_dataset(f"irds:{dsid}")
    q, d = dsid.split("/")[1].split("-")
    topics = ds.get_topics().iloc[:20]
    topics = topics[topics.qid.isin(bm25_study.per_query.qid)]
    qrels = ds.get_qrels()
    measures = [AP, R @ 10] + (["RankDistance"] if d == "multi" else [])
    got = pt.Experiment([BM25().retriever(ds)], topics, qrels[qrels.qid.isin(topics.qid)], eval_metrics=measures,
                        names=["BM25"]).iloc[0]
    rows = bm25_study.per_query
    rows = rows[(rows.system == "BM25") & (rows.query_lang == q) & (rows.doc_lang == d)]
    assert len(rows) == len(topics)
    assert got["AP"] == pytest.approx(rows["AP"].mean(), rel=1e-9)
    assert got["R@10"] == pytest.approx(rows["R@10"].mean(), rel=1e-9)
    if d == "multi":
        assert not np.isnan(got["RankDistance"])
        assert got["RankDistance"] == pytest.approx(rows["RankDistance"].mean(), rel=1e-9)


@pytest.mark.slow
def test_bm25_then_dense_reranking(default_encoder):
    ds = pt.get_dataset("irds:xquad-r/de-en")
    topics, qrels = ds.get_topics().head(20), ds.get_qrels()
    bm25 = BM25().retriever(ds)
    rerank = bm25 % 50 >> pt.text.get_text(ds, "text") >> default_encoder.text_scorer()
    res = pt.Experiment([bm25, rerank], topics, qrels[qrels.qid.isin(topics.qid)], eval_metrics=[AP, R @ 50],
                        names=["BM25", "BM25 >> dense"])
    # re-ranking keeps BM25's candidates (same recall at 50) and orders them far better across languages
    assert res.loc[1, "R@50"] == pytest.approx(res.loc[0, "R@50"])
    assert res.loc[1, "AP"] > res.loc[0, "AP"] + 0.05
