"""Rank-based measures against ir_measures (pytrec_eval provider) as the oracle."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import ir_measures
import numpy as np
import pandas as pd
import pyterrier as pt
import pytest
from ir_measures import AP, RR, R, nDCG

from pyterrier_hybrid.measures import (
    DEFAULT_MEASURES,
    SUPPORTED_MEASURES,
    MeasureParameterError,
    RankDistance,
    RankDistanceWarning,
    main,
    mean,
    measure_fn,
    rank_metrics,
    relevant_ranks,
)

PYTREC_MEASURES = [AP, AP @ 5, AP @ 100, R @ 1, R @ 10, nDCG @ 10, RR]
LANGS = ["en", "de", "ar", "zh", "th"]


def _setup(scores: np.ndarray, seed: int = 0):
    """LAReQA-style ids, qrels with absent relevant docs, the full run and the ranks inputs."""
    rng = np.random.default_rng(seed)
    n_queries, n_docs = scores.shape
    pool = np.array([f"{lang}_{p}_{s}" for lang in LANGS for p in range(20) for s in range(12)])
    docnos = rng.permutation(pool)[:n_docs]  # column order unrelated to docno order
    qids = [f"{LANGS[i % len(LANGS)]}_5726{i:04d}" for i in range(n_queries)]
    rows = []
    for i, qid in enumerate(qids):
        n_in = 0 if i == 0 else 1 if i == 1 else rng.integers(2, 8)  # q0: none in corpus, q1: one
        present = rng.choice(docnos, size=n_in, replace=False)
        absent = [f"{lang}_99_{i}" for lang in LANGS[: rng.integers(1 if i == 0 else 0, 3)]]
        rows += [(qid, d, 1) for d in [*present, *absent]]
        rows += [(qid, d, 0) for d in rng.choice(docnos, size=2)]  # judged non-relevant: ignored
    qrels = pd.DataFrame(rows, columns=["query_id", "doc_id", "relevance"]).drop_duplicates(
        ["query_id", "doc_id"], keep="first"
    )
    relevant = qrels[qrels.relevance >= 1].groupby("query_id")["doc_id"].agg(list)
    column = {d: j for j, d in enumerate(docnos)}
    rel_cols = [np.array([column[d] for d in relevant[q] if d in column], dtype=np.int64) for q in qids]
    n_relevant = np.array([len(relevant[q]) for q in qids])
    run = pd.DataFrame(
        {"query_id": np.repeat(qids, n_docs), "doc_id": np.tile(docnos, n_queries), "score": scores.ravel()}
    )
    return qids, docnos, rel_cols, n_relevant, qrels, run


def _oracle(measures, qrels, run, qids, provider=ir_measures.pytrec_eval) -> dict[str, np.ndarray]:
    values = {(str(m.measure), m.query_id): m.value for m in provider.iter_calc(measures, qrels, run)}
    return {str(m): np.array([values[str(m), q] for q in qids], dtype=np.float64) for m in measures}


def _blockwise_ranks(scores, docnos, rel_cols, block=20):
    """Ranks computed block by block, as the study does."""
    ranks = []
    for start in range(0, len(scores), block):
        ranks += relevant_ranks(scores[start : start + block], docnos, rel_cols[start : start + block])
    return ranks


def _continuous(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _few_levels(levels):
    # integers / 7: float32 values are not the float64 values of k/7, ties everywhere
    return lambda rng, shape, dtype: (rng.integers(0, levels, shape) / 7).astype(dtype)


@pytest.mark.parametrize(
    "make, dtype",
    [
        (_continuous, np.float64),
        (_continuous, np.float32),
        (_few_levels(3), np.float64),
        (_few_levels(40), np.float32),
        (_few_levels(40), np.float64),
    ],
    ids=["float64", "float32", "3-levels-float64", "40-levels-float32", "40-levels-float64"],
)
def test_matches_pytrec_eval_exactly(make, dtype):
    rng = np.random.default_rng(42)
    scores = make(rng, (50, 400), dtype)
    qids, docnos, rel_cols, n_relevant, qrels, run = _setup(scores)
    assert run["score"].dtype == dtype  # pytrec_eval sees the float64 upcast of these values
    ranks = _blockwise_ranks(scores, docnos, rel_cols)
    ours = rank_metrics(ranks, n_relevant, PYTREC_MEASURES)
    for name, expected in _oracle(PYTREC_MEASURES, qrels, run, qids).items():
        np.testing.assert_allclose(ours[name], expected, rtol=1e-12, atol=0, err_msg=name)
    # RankDistance: matrix path == ir_measures measure on the full run, one rule: relevant docs absent
    # from the run count at depth + 1 (the corpus size here), NaN only with fewer than 2 relevant
    distance = rank_metrics(ranks, n_relevant, [RankDistance], depth=scores.shape[1])["RankDistance"]
    np.testing.assert_array_equal(
        distance, _oracle([RankDistance], qrels, run, qids, ir_measures)["RankDistance"]
    )
    np.testing.assert_array_equal(np.isnan(distance), n_relevant < 2)
    ranked = np.array([len(r) for r in rel_cols])
    missing = ranked < n_relevant
    assert (distance[missing & (n_relevant >= 2) & (ranked > 0)] > 0).all() and missing[2:].any()
    assert (distance[(n_relevant >= 2) & (ranked == 0)] == 0).all()  # all at depth + 1
    # without a depth the kernel cannot place them: NaN exactly there
    no_depth = rank_metrics(ranks, n_relevant, [RankDistance])["RankDistance"]
    np.testing.assert_array_equal(np.isnan(no_depth), missing | (n_relevant < 2))
    np.testing.assert_allclose(
        mean({"RankDistance": distance})["RankDistance"], RankDistance.calc_aggregate(qrels, run), rtol=1e-12
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_straddle_relevant_docs_and_cutoff(dtype):
    rng = np.random.default_rng(7)
    scores = _few_levels(40)(rng, (50, 400), dtype)
    qids, docnos, rel_cols, n_relevant, qrels, run = _setup(scores, seed=3)
    top = -np.sort(-scores, axis=1)
    assert (top[:, 9] == top[:, 10]).sum() > 10  # many queries have a tie across rank 10
    tied_relevant = [np.isin(scores[i], scores[i, c]).sum() > len(c) for i, c in enumerate(rel_cols)]
    assert sum(tied_relevant) > 20  # relevant docs tied with other docs
    ours = rank_metrics(relevant_ranks(scores, docnos, rel_cols), n_relevant, PYTREC_MEASURES)
    for name, expected in _oracle(PYTREC_MEASURES, qrels, run, qids).items():
        np.testing.assert_allclose(ours[name], expected, rtol=1e-12, atol=0, err_msg=name)


def test_tie_rule_is_docno_descending():
    # all scores equal: pytrec_eval orders by docno descending (code points), not by row order:
    # é_1 > zz > en_0_2 > en_0_10 > en_0_1 > de_0_1 > a
    docnos = np.array(["en_0_1", "en_0_2", "en_0_10", "de_0_1", "zz", "a", "é_1"])
    expected = [5, 3, 4, 6, 2, 7, 1]
    ranks = relevant_ranks(np.ones((1, len(docnos))), docnos, [np.arange(len(docnos))])[0]
    np.testing.assert_array_equal(ranks, expected)
    for order in (docnos, docnos[::-1]):
        run = pd.DataFrame({"query_id": "q", "doc_id": order, "score": 1.0})
        for doc, rank in zip(docnos, expected, strict=True):
            qrels = pd.DataFrame({"query_id": ["q"], "doc_id": [doc], "relevance": [1]})
            assert ir_measures.pytrec_eval.calc_aggregate([RR], qrels, run)[RR] == 1 / rank


# Hand case. Docs and scores per query:
#                en_0_0 en_0_1 de_0_0 de_0_1 ar_0_0 ar_0_1
#   en_q1:        0.9    0.5    0.5    0.7    0.5    0.1
#   de_q1:        0.2    0.2    0.2    0.2    0.2    0.2
#   ar_q1:        0.1    0.2    0.3    0.4    0.5    0.6
# en_q1 order: en_0_0(1) de_0_1(2) then the 0.5 tie by docno desc en_0_1(3) de_0_0(4) ar_0_0(5),
#   ar_0_1(6). Relevant en_0_0, de_0_0, ar_0_0 (+ zh_0_0 absent): ranks 1,4,5 -> distance 4,
#   AP = (1/1 + 2/4 + 3/5) / 4 = 0.525.
# de_q1 all tied, docno desc: en_0_1(1) en_0_0(2) de_0_1(3) de_0_0(4) ar_0_1(5) ar_0_0(6).
#   Relevant en_0_0, de_0_0: ranks 2,4 -> distance 2, AP = (1/2 + 2/4) / 2 = 0.5.
# ar_q1: relevant ar_0_1 (rank 1) + ar_9_9 absent, AP = 0.5.
# RankDistance counts a relevant doc absent from the run at depth + 1 = 7 (6 docs per query):
#   en_q1 (zh_0_0 absent) 7 - 1 = 6, de_q1 4 - 2 = 2, ar_q1 7 - 1 = 6; mean 14 / 3.
# Mean AP = (0.525 + 0.5 + 0.5) / 3.
HAND_DOCS = np.array(["en_0_0", "en_0_1", "de_0_0", "de_0_1", "ar_0_0", "ar_0_1"])
HAND_QIDS = ["en_q1", "de_q1", "ar_q1"]
HAND_SCORES = np.array([[0.9, 0.5, 0.5, 0.7, 0.5, 0.1], [0.2] * 6, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]])
HAND_QRELS = pd.DataFrame(
    [
        ("en_q1", "en_0_0"),
        ("en_q1", "de_0_0"),
        ("en_q1", "ar_0_0"),
        ("en_q1", "zh_0_0"),
        ("de_q1", "en_0_0"),
        ("de_q1", "de_0_0"),
        ("ar_q1", "ar_0_1"),
        ("ar_q1", "ar_9_9"),
    ],
    columns=["query_id", "doc_id"],
).assign(relevance=1)
HAND_RUN = pd.DataFrame(
    {"query_id": np.repeat(HAND_QIDS, 6), "doc_id": np.tile(HAND_DOCS, 3), "score": HAND_SCORES.ravel()}
)


def test_rank_distance_by_hand():
    ranks = relevant_ranks(HAND_SCORES, HAND_DOCS, [[0, 2, 4], [0, 2], [5]])
    assert [r.tolist() for r in ranks] == [[1, 4, 5], [2, 4], [1]]
    metrics = rank_metrics(ranks, [4, 2, 2], depth=6)
    assert list(metrics) == list(DEFAULT_MEASURES)
    np.testing.assert_array_equal(metrics["RankDistance"], [6, 2, 6])
    np.testing.assert_allclose(metrics["AP"], [0.525, 0.5, 0.5], rtol=1e-15)
    assert mean(metrics)["RankDistance"] == 14 / 3
    per_query = {m.query_id: m.value for m in RankDistance.iter_calc(HAND_QRELS, HAND_RUN)}
    np.testing.assert_array_equal([per_query[q] for q in HAND_QIDS], [6, 2, 6])
    aggregate = ir_measures.calc_aggregate([AP, RankDistance], HAND_QRELS, HAND_RUN)
    assert aggregate[RankDistance] == 14 / 3
    assert aggregate[AP] == pytest.approx((0.525 + 0.5 + 0.5) / 3, rel=1e-15)


def test_rank_distance_counts_relevant_docs_missing_from_run_at_depth_plus_one():
    # top 4 per query: en_q1 keeps en_0_0(1), de_0_0(4), misses ar_0_0 and zh_0_0 -> 5 - 1 = 4;
    # de_q1 keeps ranks 2, 4 -> 2; ar_q1 keeps ar_0_1(1), misses ar_9_9 -> 4
    top4 = HAND_RUN.sort_values(["query_id", "score", "doc_id"], ascending=False).groupby("query_id").head(4)
    per_query = {
        m.query_id: m.value for m in RankDistance.iter_calc(HAND_QRELS, top4.sample(frac=1, random_state=0))
    }
    np.testing.assert_array_equal([per_query[q] for q in HAND_QIDS], [4, 2, 4])
    assert RankDistance.calc_aggregate(HAND_QRELS, top4) == 10 / 3
    # the kernel, given the run's depth, says the same
    ranks = [[1, 4], [2, 4], [1]]
    np.testing.assert_array_equal(rank_metrics(ranks, [4, 2, 2], ["RankDistance"], depth=4)["RankDistance"], [4, 2, 4])
    # nothing relevant retrieved: all at depth + 1 -> 0; a query absent from the run: depth 0 -> 0
    top1 = HAND_RUN[HAND_RUN.doc_id == "en_0_1"]
    assert {m.query_id: m.value for m in RankDistance.iter_calc(HAND_QRELS, top1)} == dict.fromkeys(HAND_QIDS, 0.0)
    assert rank_metrics([[]], [3], ["RankDistance"], depth=1)["RankDistance"].tolist() == [0.0]


def _pt_inputs(qids):
    run = HAND_RUN[HAND_RUN.query_id.isin(qids)].rename(columns={"query_id": "qid", "doc_id": "docno"})
    qrels = HAND_QRELS[HAND_QRELS.query_id.isin(qids)]
    qrels = qrels.rename(columns={"query_id": "qid", "doc_id": "docno", "relevance": "label"})
    return run, pd.DataFrame({"qid": qids, "query": "x"}), qrels


@pytest.mark.parametrize("batch_size", [None, 1])
def test_pt_experiment_with_rank_distance(batch_size):
    # en_q1 6 (zh_0_0, absent from the run, at depth + 1), de_q1 2: mean 4
    run, topics, qrels = _pt_inputs(HAND_QIDS[:2])
    system = pt.Transformer.from_df(run)
    result = pt.Experiment([system], topics, qrels, eval_metrics=[AP, RankDistance], batch_size=batch_size)
    assert result.loc[0, "RankDistance"] == 4.0
    assert result.loc[0, "AP"] == pytest.approx((0.525 + 0.5) / 2, rel=1e-15)


def test_pt_paths_agree_on_truncated_runs():
    # a relevant doc the run lacks counts at depth + 1 in pt.Evaluate, pt.Experiment (which averages
    # per-query values itself) and calc_aggregate alike: no NaN mean, no query dropped
    run, topics, qrels = _pt_inputs(HAND_QIDS)
    top4 = run.sort_values(["qid", "score", "docno"], ascending=False).groupby("qid").head(4)
    for r, want in ((run, 14 / 3), (top4, 10 / 3)):
        assert pt.Evaluate(r, qrels, [RankDistance])["RankDistance"] == want
        system = pt.Transformer.from_df(r)
        assert pt.Experiment([system], topics, qrels, eval_metrics=[RankDistance]).loc[0, "RankDistance"] == want
        per_query = pt.Experiment([system], topics, qrels, eval_metrics=[RankDistance], perquery=True)
        assert mean({"RankDistance": per_query["value"]})["RankDistance"] == want


def test_measure_fn_maps_ir_measures_objects():
    ranks, n_relevant = [np.array([3, 12]), np.array([1]), np.array([], dtype=np.int64)], [2, 3, 1]
    metrics = rank_metrics(ranks, n_relevant, [ir_measures.parse_measure("R@10"), "nDCG@10", AP, RR])
    for name, values in metrics.items():
        np.testing.assert_array_equal(measure_fn(ir_measures.parse_measure(name))(ranks, n_relevant), values)
    np.testing.assert_array_equal(metrics["R@10"], [0.5, 1 / 3, 0])
    np.testing.assert_array_equal(metrics["RR"], [1 / 3, 1, 0])
    assert "R@k" in SUPPORTED_MEASURES and "nDCG@k" in SUPPORTED_MEASURES


@pytest.mark.parametrize(
    "measure",
    [ir_measures.P @ 10, AP(rel=2) @ 100, RR @ 10, nDCG(gains={0: 0, 1: 3}) @ 10, R(judged_only=True) @ 10, "MAP",
     "RankDistance@10"],
)
def test_unsupported_measures(measure):
    with pytest.raises(ValueError, match="supported: AP, RR, RankDistance, AP@k, R@k, nDCG@k"):
        measure_fn(measure)
    with pytest.raises(ValueError, match="cannot be computed from relevant ranks"):
        rank_metrics([np.array([1])], 1, [AP, measure])


@pytest.mark.parametrize(
    "scores, docnos, rel_cols, error, match",
    [
        (np.zeros(4), ["a"] * 4, [[0]], ValueError, "2-D"),
        (np.zeros((1, 4), dtype=np.int64), list("abcd"), [[0]], TypeError, "float dtype"),
        (np.full((1, 4), np.nan), list("abcd"), [[0]], ValueError, "NaN"),
        (np.zeros((1, 4)), list("abc"), [[0]], ValueError, "one id per score column"),
        (np.zeros((1, 4)), np.arange(4), [[0]], TypeError, "strings"),
        (np.zeros((2, 4)), list("abcd"), [[0]], ValueError, "1 entries but scores has 2 rows"),
        (np.zeros((1, 4)), list("abcd"), [[4]], ValueError, r"outside \[0, 4\)"),
        (np.zeros((1, 4)), list("abcd"), [[1, 1]], ValueError, "repeats"),
        (np.zeros((1, 4)), list("abcd"), [[0.5]], ValueError, "integer"),
    ],
)
def test_relevant_ranks_bad_input(scores, docnos, rel_cols, error, match):
    with pytest.raises(error, match=match):
        relevant_ranks(scores, docnos, rel_cols)


@pytest.mark.parametrize(
    "ranks, n_relevant, match",
    [
        ([np.array([1, 2])], 1, "2 relevant ranks but n_relevant=1"),
        ([np.array([1]), np.array([2])], [1, 1, 1], "one per query"),
        ([np.array([0])], 1, "1-based"),
        ([np.array([3, 3])], 2, "same rank"),
    ],
)
def test_rank_metrics_bad_input(ranks, n_relevant, match):
    with pytest.raises(ValueError, match=match):
        rank_metrics(ranks, n_relevant)


def test_mean_skips_nan_for_rank_distance_only():
    result = mean({"AP": [0.5, np.nan], "R@10": [0.25, 0.75], "RankDistance": [2.0, np.nan, 4.0]})
    assert np.isnan(result["AP"]) and result["R@10"] == 0.5 and result["RankDistance"] == 3.0
    assert np.isnan(mean({"RankDistance": [np.nan]})["RankDistance"])


# ---------------------------------------------------------------- registration with ir_measures / PyTerrier


def test_rank_distance_is_registered_by_name():
    assert ir_measures.measures.registry["RankDistance"] is RankDistance
    parsed = ir_measures.parse_measure("RankDistance")
    assert parsed == RankDistance and str(parsed) == "RankDistance" and type(parsed) is type(RankDistance)
    assert ir_measures.calc_aggregate([parsed, AP], HAND_QRELS, HAND_RUN)[RankDistance] == 14 / 3
    assert ir_measures.parse_trec_measure("RankDistance") == [RankDistance]


def test_registration_happens_once_on_import():
    code = """
import importlib, ir_measures
print("RankDistance" in ir_measures.measures.registry)
import pyterrier_hybrid  # registers; the submodule itself is not imported by name here
registry, parse_trec = ir_measures.measures.registry, ir_measures.parse_trec_measure
print(type(registry["RankDistance"]).__module__, parse_trec.__wrapped__ is ir_measures.util.parse_trec_measure)
importlib.reload(pyterrier_hybrid.measures)  # importing again must not register (or wrap) twice
print(ir_measures.parse_trec_measure is parse_trec, registry["RankDistance"] is pyterrier_hybrid.measures.RankDistance,
      [name for name, m in registry.items() if str(m) == "RankDistance"])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=dict(os.environ))
    assert out.stdout.split("\n")[:3] == ["False", "pyterrier_hybrid.measures True", "True True ['RankDistance']"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: ir_measures.parse_measure("RankDistance@10"),
        lambda: RankDistance @ 10,
        lambda: RankDistance(rel=2),
        lambda: ir_measures.parse_trec_measure("RankDistance@10"),
    ],
    ids=["parse_measure", "matmul", "call", "parse_trec_measure"],
)
def test_rank_distance_rejects_parameters(make):
    with pytest.raises(MeasureParameterError, match=r"^RankDistance takes no parameters, got .*valid: RankDistance$"):
        make()


def test_rank_distance_cutoff_message():
    with pytest.raises(TypeError, match=r"got cutoff=10 \(that is RankDistance@10\).* so it has no cutoff"):
        ir_measures.parse_measure("RankDistance@10")


def test_pt_experiment_with_string_names():
    run, topics, qrels = _pt_inputs(HAND_QIDS[:2])
    system = pt.Transformer.from_df(run)
    by_name = pt.Experiment([system], topics, qrels, eval_metrics=["RankDistance", "map"])
    by_object = pt.Experiment([system], topics, qrels, eval_metrics=[RankDistance, AP])
    assert by_name.loc[0, "RankDistance"] == by_object.loc[0, "RankDistance"] == 4.0  # (6 + 2) / 2
    assert by_name.loc[0, "map"] == by_object.loc[0, "AP"]
    assert pt.Evaluate(run, qrels, ["RankDistance"]) == {"RankDistance": 4.0}
    with pytest.raises(MeasureParameterError, match="RankDistance@10"):
        pt.Experiment([system], topics, qrels, eval_metrics=["RankDistance@10"])


@pytest.mark.parametrize("name", ["map", "recall_10", "P_5,10", "ndcg_cut_20", "recip_rank", "official"])
def test_trec_names_are_parsed_as_before(name):
    assert ir_measures.parse_trec_measure(name) == ir_measures.util.parse_trec_measure(name)


@pytest.mark.parametrize("name", ["RankDist", "AP", "R@10", "rankdistance"])
def test_other_unknown_trec_names_still_fail(name):
    with pytest.raises(ValueError, match="unkonwn measure"):  # ir_measures' own message (sic)
        ir_measures.parse_trec_measure(name)


# ---------------------------------------------------------------- undefined everywhere: say why


def test_single_relevant_per_query_warns():
    single = HAND_QRELS.groupby("query_id").head(1)  # one relevant doc per query, like xquad-r/ar-en
    with pytest.warns(RankDistanceWarning, match=r"no query has more than one relevant document.*xquad-r/en-multi"):
        values = {m.query_id: m.value for m in RankDistance.iter_calc(single, HAND_RUN)}
    assert set(values) == set(HAND_QIDS) and all(np.isnan(v) for v in values.values())
    with pytest.warns(RankDistanceWarning, match="several relevant candidates per query"):
        assert np.isnan(RankDistance.calc_aggregate(single, HAND_RUN))


def test_truncated_run_is_measured_without_warning():
    top1 = HAND_RUN.sort_values(["query_id", "score", "doc_id"], ascending=False).groupby("query_id").head(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RankDistanceWarning)
        # en_q1 keeps en_0_0 (1), others at 2 -> 1; de_q1 keeps en_0_1 (not relevant) -> 0; ar_q1 -> 1
        assert RankDistance.calc_aggregate(HAND_QRELS, top1) == 2 / 3
        assert RankDistance.calc_aggregate(HAND_QRELS, HAND_RUN) == 14 / 3


# ---------------------------------------------------------------- ir_measures' command line


@pytest.fixture
def trec_files(tmp_path):
    qrels, run = tmp_path / "qrels.txt", tmp_path / "run.txt"
    qrels.write_text("".join(f"{q} 0 {d} {r}\n" for q, d, r in HAND_QRELS.itertuples(index=False)))
    run.write_text("".join(f"{q} Q0 {d} 0 {s!r} t\n" for q, d, s in HAND_RUN.itertuples(index=False)))
    return str(qrels), str(run)


def test_command_line(trec_files, capsys):
    main([*trec_files, "RankDistance", "AP", "--by_query"])
    rows = [line.split("\t") for line in capsys.readouterr().out.split("\n")[:-1]]
    assert {(q, v) for q, m, v in rows if m == "RankDistance"} == {
        ("en_q1", "6.0000"), ("de_q1", "2.0000"), ("ar_q1", "6.0000"), ("all", "4.6667")
    }
    assert float(next(v for q, m, v in rows if (q, m) == ("all", "AP"))) == pytest.approx((0.525 + 0.5 + 0.5) / 3, abs=5e-5)


def test_command_line_rejects_cutoff(trec_files, capsys):
    with pytest.raises(SystemExit) as e:
        main([*trec_files, "RankDistance@10"])
    assert e.value.code == 2
    assert "RankDistance takes no parameters, got cutoff=10" in capsys.readouterr().err


def test_command_line_process(trec_files):
    code = "from pyterrier_hybrid.measures import main; main()"
    out = subprocess.run([sys.executable, "-c", code, *trec_files, "RankDistance"], capture_output=True, text=True,
                         check=True, env=dict(os.environ))
    assert out.stdout == "RankDistance\t4.6667\n"


def test_nothing_relevant_ranked_in_a_whole_block():
    # a truncated run may rank no relevant doc for any query of a block: zeros, not a dtype error
    metrics = rank_metrics([[], []], [1, 2], ["AP", "R@10", "nDCG@10", "RR", "RankDistance"], depth=5)
    assert metrics["AP"].tolist() == [0.0, 0.0] and metrics["nDCG@10"].tolist() == [0.0, 0.0]
    assert np.isnan(metrics["RankDistance"][0]) and metrics["RankDistance"][1] == 0.0
