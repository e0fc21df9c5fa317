"""The language-pair study: exactness against ir_measures, counts, significance, outputs, errors."""

from __future__ import annotations

import json
import os

import ir_datasets
import ir_measures
import numpy as np
import pandas as pd
import pyterrier as pt
import pytest
from ir_measures import AP, RR, R, nDCG

from pyterrier_hybrid import DenseEncoder, RankDistance, VectorCache, evaluate
from pyterrier_hybrid.cli import main as cli_main
from pyterrier_hybrid.study import LanguageData, _measure_language, load_languages, score_block

MEASURES = [AP, R @ 1, R @ 10, nDCG @ 10, RR]


@pytest.fixture(scope="module")
def real_study(default_encoder):
    return evaluate(default_encoder, languages=["en", "de"], limit_queries=30, verbose=False)


def _run_frame(qids, docnos, scores) -> pd.DataFrame:
    return pd.DataFrame({
        "query_id": np.repeat(qids, len(docnos)),
        "doc_id": np.tile(docnos, len(qids)),
        "score": scores.astype(np.float64).ravel(),
    })


@pytest.mark.slow
def test_exact_against_ir_measures_on_real_data(real_study, default_encoder):
    langs = load_languages("xquad-r", ["en", "de"], limit_queries=30)
    pool_docnos = np.concatenate([langs["en"].docnos, langs["de"].docnos])
    # the study's own (cached) vectors: what is tested is ranking and measuring, on identical scores
    dv = {d: default_encoder.cached_vectors(f"xquad-r/{d}", "doc", list(langs[d].docnos), langs[d].docs) for d in langs}
    for q in ("en", "de"):
        data = langs[q]
        qv = default_encoder.encode_queries(data.queries)
        for d, dsid in (("en", f"xquad-r/{q}-en"), ("de", f"xquad-r/{q}-de"), ("multi", f"xquad-r/{q}-multi")):
            docnos = pool_docnos if d == "multi" else langs[d].docnos
            vecs = np.concatenate([dv["en"], dv["de"]]) if d == "multi" else dv[d]
            run = _run_frame(data.qids, docnos, score_block(qv, vecs))
            qrels = pd.DataFrame(ir_datasets.load(dsid).qrels_iter())
            qrels = qrels[qrels.query_id.isin(data.qids) & qrels.doc_id.isin(docnos)]
            measures = MEASURES + ([RankDistance] if d == "multi" else [])
            want = pd.DataFrame([(m.query_id, str(m.measure), m.value) for m in ir_measures.iter_calc(measures, qrels, run)],
                                columns=["qid", "measure", "value"]).pivot(index="qid", columns="measure", values="value")
            got = real_study.per_query
            got = got[(got.query_lang == q) & (got.doc_lang == d)].set_index("qid")[want.columns].loc[want.index]
            np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, atol=0, err_msg=f"{q}-{d}")


@pytest.mark.slow
def test_study_matches_pt_experiment_pipeline(real_study, default_encoder):
    ds = pt.get_dataset("irds:xquad-r/de-en")
    topics = ds.get_topics().head(30)
    qrels = ds.get_qrels()
    pipe = default_encoder.query_encoder() >> default_encoder.index(ds).retriever(num_results=None)
    res = pt.Experiment([pipe], topics, qrels[qrels.qid.isin(topics.qid)], eval_metrics=[AP, R @ 10])
    pairs = real_study.pairs().set_index(["query_lang", "doc_lang"])
    assert res.loc[0, "AP"] == pytest.approx(pairs.loc[("de", "en"), "AP"], abs=1e-12)
    assert res.loc[0, "R@10"] == pytest.approx(pairs.loc[("de", "en"), "R@10"], abs=1e-12)


@pytest.mark.slow
def test_real_model_shape_of_results(real_study):
    s = real_study.summary().iloc[0]
    # the multilingual pool is harder than a single-language corpus, and monolingual is easiest
    assert s.mono_map > s.cross_map > 0.3 and s.multi_map < s.mono_map
    assert s.rank_distance >= 1  # two relevant per query: distance at least 1
    assert real_study.pairs().n_queries.tolist() == [30] * 6


def test_rank_distance_by_hand():
    # two languages; query q0 has its relevant doc at column 0 in "xx" and in "yy"
    e = np.eye(4, dtype=np.float32)
    xx = LanguageData("xx", np.array(["xx_a"]), ["q"], np.array(["xx_0_0", "xx_0_1"]), ["", ""], ["", ""], {"a": 0})
    yy = LanguageData("yy", np.array(["yy_a"]), ["q"], np.array(["yy_0_0", "yy_0_1"]), ["", ""], ["", ""], {"a": 0})
    qv = e[[0]] * 1.0
    dvecs = {"xx": np.stack([e[0] * 0.9, e[0] * 0.8]), "yy": np.stack([e[0] * 0.1, e[0] * 0.95])}
    # pool scores: xx_0_0 .9, xx_0_1 .8, yy_0_0 .1, yy_0_1 .95 -> ranks: yy_0_1 1, xx_0_0 2, xx_0_1 3, yy_0_0 4
    # relevant: xx_0_0 (rank 2) and yy_0_0 (rank 4) -> rank distance 4 - 2 = 2; AP = (1/2 + 2/4) / 2 = 0.5
    frames = [f for _, f in _measure_language(xx, qv, {"xx": xx, "yy": yy}, dvecs, ("mono", "cross", "multi"), MEASURES, 8)]
    df = pd.concat(frames).set_index(["setting", "doc_lang"])
    assert df.loc[("multi", "multi"), "RankDistance"] == 2
    assert df.loc[("multi", "multi"), "AP"] == pytest.approx(0.5)
    assert df.loc[("mono", "xx"), "RR"] == 1 and df.loc[("cross", "yy"), "RR"] == 0.5


def test_mlqa_query_counts_and_outputs(tiny_model_dir, tmp_path):
    tiny = DenseEncoder(str(tiny_model_dir), cache=False)
    other = DenseEncoder(str(tiny_model_dir), cache=False, prompts="none")
    res = evaluate([tiny, other], benchmark="mlqa-r", languages=["ar", "de", "es"], names=["tiny", "tiny-noprompt"],
                   verbose=False, out=tmp_path / "out")
    pairs = res.pairs()
    n = pairs[pairs.system == "tiny"].set_index(["query_lang", "doc_lang"]).n_queries
    # MLQA-R: ar-de 207, ar-es 161, de-es 196 (ids present in both), mono = all questions
    assert (n[("ar", "de")], n[("de", "ar")], n[("ar", "es")], n[("de", "es")]) == (207, 207, 161, 196)
    assert (n[("ar", "ar")], n[("de", "de")], n[("es", "es")]) == (517, 512, 500)
    assert (n[("ar", "multi")], n[("es", "multi")]) == (517, 500)
    sig = res.significance()
    assert {"p_value", "p_corrected", "reject", "+", "-"} <= set(sig.columns)
    assert set(sig.level) == {"setting", "pair"} and (sig.p_corrected.dropna() >= sig.p_value.dropna()).all()
    out = tmp_path / "out"
    doc = json.loads((out / "results.json").read_text())
    assert {"mono_map", "cross_map", "multi_map", "rank_distance"} <= set(doc["summary"])
    assert {"query_lang", "doc_lang", "setting", "map", "n_queries"} <= set(doc["pairs"][0])
    assert [s["name"] for s in doc["systems"]] == ["tiny", "tiny-noprompt"] and doc["significance"]
    pq = pd.read_parquet(out / "per_query.parquet")
    assert len(pq) == len(res.per_query) and set(pq.system) == {"tiny", "tiny-noprompt"}
    assert pd.read_csv(out / "pairs.csv").shape[0] == 2 * (9 + 3)
    for png in ("heatmap_0.png", "heatmap_1.png", "rank_distance.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "report.md").read_text()
    assert "Mo." in md and "Mul." in md and "![rank_distance.png](rank_distance.png)" in md
    assert not list(out.glob(".*"))  # no temp files left
    umask = os.umask(0)
    os.umask(umask)
    assert {f.stat().st_mode & 0o777 for f in out.iterdir()} == {0o666 & ~umask}  # not mkstemp's 0600


def test_significance_matches_pt_experiment(tiny_model_dir, tmp_path):
    tiny = DenseEncoder(str(tiny_model_dir), cache=VectorCache(tmp_path))
    ctx = DenseEncoder(str(tiny_model_dir), cache=VectorCache(tmp_path), prompts="none")
    res = evaluate([tiny, ctx], benchmark="xquad-r", languages=["es", "vi"], settings=["cross"],
                   limit_queries=80, names=["a", "b"], verbose=False)
    sig = res.significance(correction=None).set_index(["level", "query_lang", "doc_lang"])
    ds = pt.get_dataset("irds:xquad-r/es-vi")
    topics = ds.get_topics().head(80)
    qrels = ds.get_qrels()
    # pt.Experiment on the same rankings, via transformers that return the study's scores
    langs = load_languages("xquad-r", ["es", "vi"], limit_queries=80)
    runs = []
    for e in (tiny, ctx):
        # the study's cached vectors: the same rankings, no re-encoding
        qv = e.cached_vectors("xquad-r/es?limit=80", "query", list(langs["es"].qids), langs["es"].queries)
        dv = e.cached_vectors("xquad-r/vi", "doc", list(langs["vi"].docnos), langs["vi"].docs)
        sc = score_block(qv, dv)
        run = _run_frame(langs["es"].qids, langs["vi"].docnos, sc).rename(columns={"query_id": "qid", "doc_id": "docno"})
        runs.append(pt.Transformer.from_df(run))
    exp = pt.Experiment(runs, topics, qrels[qrels.qid.isin(topics.qid)], eval_metrics=[AP], baseline=0)
    assert sig.loc[("pair", "es", "vi"), "p_value"] == pytest.approx(exp.loc[1, "AP p-value"], rel=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"languages": ["xx"]}, "has no language xx; valid: ar, de"),
        ({"languages": []}, "language list is empty"),
        ({"limit_queries": 0}, "positive number of queries"),
        ({"settings": ["mono", "bilingual"]}, "unknown settings"),
        ({"benchmark": "tydi-r"}, "valid: xquad-r, mlqa-r"),
    ],
)
def test_bad_inputs(tiny_model_dir, kwargs, message):
    with pytest.raises((ValueError, KeyError), match=message):
        evaluate(DenseEncoder(str(tiny_model_dir), cache=False), verbose=False, **kwargs)


def test_cli_evaluate_and_errors(tiny_model_dir, tmp_path, capsys):
    code = cli_main(["evaluate", "--model", str(tiny_model_dir), "--languages", "en,zh", "--limit-queries", "20",
                     "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert code == 0 and "Mo." in out and "RankDist" in out and (tmp_path / "o" / "results.json").is_file()
    assert cli_main(["evaluate", "--model", str(tmp_path / "missing"), "--languages", "en"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli_main(["evaluate", "--model", str(tiny_model_dir), "--languages", "en,xx"]) == 2
    assert "has no language xx" in capsys.readouterr().err


def test_setting_level_tests_use_the_question_as_the_unit():
    """A question seen through many pairs counts once: its rows are averaged before the t-test."""
    from types import SimpleNamespace

    from scipy import stats

    from pyterrier_hybrid.significance import paired_tests

    rng = np.random.default_rng(0)
    rows = []
    for system in ("a", "b"):
        for q in ("en", "de", "zh"):
            for d in ("en", "de", "zh"):
                if q != d:
                    for i in range(20):
                        rows.append({"system": system, "setting": "cross", "query_lang": q, "doc_lang": d,
                                     "qid": f"{q}_{i}", "AP": rng.random()})
    pq = pd.DataFrame(rows)
    res = SimpleNamespace(per_query=pq, systems=["a", "b"], measures=["AP"])
    sig = paired_tests(res, correction=None)
    top = sig[sig.level == "setting"].iloc[0]
    question = pq.assign(question=pq.qid.str.split("_").str[1]).groupby(["system", "question"]).AP.mean()
    assert top.n_queries == 120 and top.n_units == 20
    assert top.p_value == pytest.approx(stats.ttest_rel(question["b"], question["a"])[1], rel=1e-12)
    pair = sig[(sig.level == "pair")].iloc[0]
    assert pair.n_units == pair.n_queries == 20
