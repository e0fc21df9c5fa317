"""The LAReQA ids and RankDistance used through PyTerrier, ir_datasets and ir_measures as their own users
would (text loaders, measure names as strings, ir_measures' command line), on the real files.

Runs come from a tiny lexical scorer (shared lowercase words) over the real corpora: real retrieved rows
without loading a model. Expected values are computed independently by the study's rank kernels.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyterrier as pt
import pytest

from pyterrier_hybrid.measures import RankDistanceWarning, main, mean, rank_metrics, relevant_ranks


def _scores(queries, docs) -> np.ndarray:
    doc_words = [set(d.text.lower().split()) for d in docs]
    return np.array([[len(set(q.lower().split()) & w) for w in doc_words] for q in queries], dtype=np.float64)


def _run(topics: pd.DataFrame, docs, scores: np.ndarray) -> pd.DataFrame:
    """The full ranking of every doc for every topic (qid, docno, score)."""
    return pd.DataFrame({
        "qid": np.repeat(topics["qid"].to_numpy(), len(docs)),
        "docno": np.tile([d.doc_id for d in docs], len(topics)),
        "score": scores.ravel(),
    })


def _retriever(docs, k: int) -> pt.Transformer:
    def retrieve(topics: pd.DataFrame) -> pd.DataFrame:
        run = _run(topics, docs, _scores(topics["query"], docs)).merge(topics, on="qid")
        run = run.sort_values(["qid", "score", "docno"], ascending=[True, False, False]).groupby("qid").head(k)
        return run.assign(rank=run.groupby("qid").cumcount()).reset_index(drop=True)

    return pt.apply.generic(retrieve)


def _expected(scores, docs, topics, qrels, measures) -> dict[str, float]:
    """Means of the study's kernels (relevant_ranks + rank_metrics) on the same scores."""
    column = {d.doc_id: j for j, d in enumerate(docs)}
    relevant = qrels.groupby("qid")["docno"].agg(list)
    rel_cols = [np.array([column[d] for d in relevant[q]], dtype=np.int64) for q in topics["qid"]]
    ranks = relevant_ranks(scores, np.array(list(column)), rel_cols)
    return mean(rank_metrics(ranks, [len(c) for c in rel_cols], measures))


def _paragraphs(data_dir, bench: str, lang: str) -> list[dict]:
    data = json.loads((data_dir / bench / f"{lang}.json").read_text(encoding="utf-8"))["data"]
    return [para for article in data for para in article["paragraphs"]]


def test_text_loader_and_get_text_on_retrieved_rows(data_dir):
    ds = pt.get_dataset("irds:xquad-r/ar-en")
    docs = list(ds.irds_ref().docs_iter())
    topics = ds.get_topics().iloc[[0, 500, 1189]]
    res = (_retriever(docs, k=4) >> pt.text.get_text(ds, "text"))(topics)
    assert len(res) == 12 and res["docno"].str.startswith("en_").all()
    paragraphs = _paragraphs(data_dir, "xquad-r", "en")
    where = [tuple(map(int, docno.split("_")[1:])) for docno in res["docno"]]
    assert res["text"].tolist() == [paragraphs[p]["sentences"][s] for p, s in where]

    loaded = ds.text_loader()(res[["qid", "docno", "score"]])  # all text fields
    assert list(loaded.columns) == ["qid", "docno", "score", "text", "context", "lang"]
    assert loaded["text"].tolist() == res["text"].tolist()
    assert loaded["context"].tolist() == [paragraphs[p]["context"] for p, _ in where]
    assert (loaded["lang"] == "en").all()
    with pytest.raises(ValueError, match=r"Keys present in metaindex are \['text', 'context', 'lang'\]"):
        pt.text.get_text(ds, "title")


def test_rank_distance_by_name_on_the_pool():
    ds = pt.get_dataset("irds:xquad-r/en-multi")
    docs = list(ds.irds_ref().docs_iter())
    topics = ds.get_topics().iloc[[3, 700, 1100]]
    scores = _scores(topics["query"], docs)
    qrels = ds.get_qrels()
    qrels = qrels[qrels["qid"].isin(topics["qid"])]
    result = pt.Experiment([pt.Transformer.from_df(_run(topics, docs, scores))], topics, qrels,
                           eval_metrics=["RankDistance", "map"])
    expected = _expected(scores, docs, topics, qrels, ["RankDistance", "AP"])
    assert result.loc[0, "RankDistance"] == expected["RankDistance"]
    assert result.loc[0, "map"] == pytest.approx(expected["AP"], rel=1e-12)


def test_single_pair_dataset_warns():
    ds = pt.get_dataset("irds:xquad-r/ar-en")
    docs = list(ds.irds_ref().docs_iter())
    topics = ds.get_topics().head(3)
    run = _run(topics, docs, _scores(topics["query"], docs))
    with pytest.warns(RankDistanceWarning, match=r"one relevant candidate per language\), not a single language pair"):
        result = pt.Experiment([pt.Transformer.from_df(run)], topics, ds.get_qrels(),
                               eval_metrics=["RankDistance", "map"])
    assert np.isnan(result.loc[0, "RankDistance"]) and result.loc[0, "map"] > 0


def test_ir_measures_command_line_with_dataset_id(tmp_path, capsys):
    ds = pt.get_dataset("irds:mlqa-r/de-multi")
    docs = list(ds.irds_ref().docs_iter())
    topics = ds.get_topics().iloc[[0, 250]]
    scores = _scores(topics["query"], docs)
    run_file = tmp_path / "run.txt"
    run = _run(topics, docs, scores)
    run_file.write_text("".join(f"{q} Q0 {d} 0 {s!r} lexical\n" for q, d, s in run.itertuples(index=False)))
    main(["mlqa-r/de-multi", str(run_file), "RankDistance"])  # qrels: the dataset id
    qrels = ds.get_qrels()
    expected = _expected(scores, docs, topics, qrels[qrels["qid"].isin(topics["qid"])], ["RankDistance"])
    assert capsys.readouterr().out == f"RankDistance\t{expected['RankDistance']:.4f}\n"


def test_fresh_process_registrations():
    # ir_datasets 0.6 has no plugin discovery: without the start-up hook (turned off here; tested in
    # test_startup_hook.py) the ids exist once datasets_ext is imported (directly, through
    # pyterrier_hybrid, or through `import pyterrier` and its pyterrier.modules entry point)
    code = """
import ir_datasets, ir_measures
try:
    ir_datasets.load("xquad-r/ar-en")
except KeyError:
    print("unknown before import")
import pyterrier
print(ir_datasets.load("xquad-r/ar-en").docs_count(), ir_measures.parse_measure("RankDistance"))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTERRIER_HYBRID_IRDS_HOOK": "0"})
    assert out.stdout == "unknown before import\n1180 RankDistance\n"


def test_rank_distance_on_a_truncated_lexical_run_one_rule_on_every_path():
    # a lexical top-20 on the real pool misses most answers: each missing one counts at depth + 1 = 21
    # in pt.Experiment (its own mean), calc_aggregate / pt.Evaluate and the study's kernels alike
    import ir_measures

    ds = pt.get_dataset("irds:xquad-r/de-multi")
    docs = list(ds.irds_ref().docs_iter())
    topics = ds.get_topics().iloc[[5, 300, 600, 900]]
    qrels = ds.get_qrels()
    qrels = qrels[qrels["qid"].isin(topics["qid"])]
    k = 20
    experiment = pt.Experiment([_retriever(docs, k)], topics, qrels, eval_metrics=["RankDistance"])
    run = _retriever(docs, k)(topics)
    aggregate = ir_measures.calc_aggregate([ir_measures.parse_measure("RankDistance")],
                                           qrels.rename(columns={"qid": "query_id", "docno": "doc_id", "label": "relevance"}),
                                           run.rename(columns={"qid": "query_id", "docno": "doc_id"}))
    # the kernels: ranks in the full ranking, those deeper than k are "not retrieved"
    scores = _scores(topics["query"], docs)
    column = {d.doc_id: j for j, d in enumerate(docs)}
    relevant = qrels.groupby("qid")["docno"].agg(list)
    rel_cols = [np.array([column[d] for d in relevant[q]], dtype=np.int64) for q in topics["qid"]]
    full = relevant_ranks(scores, np.array(list(column)), rel_cols)
    truncated = [r[r <= k] for r in full]
    assert sum(len(r) for r in truncated) < sum(len(r) for r in full) / 2  # most answers not retrieved
    kernel = mean(rank_metrics(truncated, [len(c) for c in rel_cols], ["RankDistance"], depth=k))["RankDistance"]
    assert experiment.loc[0, "RankDistance"] == pytest.approx(kernel, rel=1e-12)
    assert list(aggregate.values())[0] == pytest.approx(kernel, rel=1e-12)
    # a lower bound of the full ranking's value, never NaN
    full_value = mean(rank_metrics(full, [len(c) for c in rel_cols], ["RankDistance"]))["RankDistance"]
    assert 0 < kernel <= full_value
