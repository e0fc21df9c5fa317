"""DenseIndex / DenseRetriever on synthetic clustered unit vectors (no model needed)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import ir_measures
import numpy as np
import pandas as pd
import pyterrier as pt
import pytest
import pytrec_eval

from pyterrier_hybrid.index import DenseIndex, DenseRetriever

N_DOCS, N_QUERIES, DIM = 3000, 40, 384


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus() -> dict:
    """Topic -> subtopic -> document clusters; each query paraphrases one (relevant) document."""
    rng = np.random.default_rng(0)
    topics = rng.standard_normal((30, DIM))
    subtopics = np.repeat(topics, 5, axis=0) + 0.8 * rng.standard_normal((150, DIM))
    vectors = _unit(subtopics[rng.integers(0, 150, N_DOCS)] + rng.standard_normal((N_DOCS, DIM)))
    sources = rng.choice(N_DOCS, N_QUERIES, replace=False)
    queries = _unit(vectors[sources] + 0.8 * _unit(rng.standard_normal((N_QUERIES, DIM))))
    docnos = np.array([f"en_{i // 7}_{i % 7}" for i in range(N_DOCS)])
    qids = [f"q{i}" for i in range(N_QUERIES)]
    return {
        "vectors": vectors,
        "docnos": docnos,
        "queries": queries,
        "topics": pd.DataFrame({"qid": qids, "query": [f"question {i}" for i in range(N_QUERIES)]}),
        "qrels": pd.DataFrame({"qid": qids, "docno": docnos[sources], "label": 1}),
    }


@pytest.fixture(scope="module")
def index(corpus: dict, tmp_path_factory: pytest.TempPathFactory) -> DenseIndex:
    path = tmp_path_factory.mktemp("dense") / "index"
    return DenseIndex.build(path, corpus["docnos"], corpus["vectors"], metadata={"model": "synthetic", "seed": 0})


@pytest.fixture(scope="module")
def query_frame(corpus: dict) -> pd.DataFrame:
    return corpus["topics"].assign(query_vec=list(corpus["queries"]))


@pytest.fixture(scope="module")
def exact_run(index: DenseIndex, query_frame: pd.DataFrame) -> pd.DataFrame:
    return index.retriever(num_results=None)(query_frame)  # the full ranking


def brute_force(queries: np.ndarray, vectors: np.ndarray, docnos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query: docnos and scores by score descending, equal scores by docno descending."""
    scores = (queries.astype(np.float64) @ vectors.T.astype(np.float64)).astype(np.float32)
    by_docno_desc = np.argsort(docnos)[::-1]
    order = by_docno_desc[np.argsort(-scores[:, by_docno_desc], axis=1, kind="stable")]
    return docnos[order], np.take_along_axis(scores, order, axis=1)


def per_query(run: pd.DataFrame, qid: str, column: str) -> np.ndarray:
    return run[run["qid"] == qid].sort_values("rank")[column].to_numpy()


def recall_at(run: pd.DataFrame, reference: pd.DataFrame, k: int) -> float:
    got = run[run["rank"] < k].groupby("qid")["docno"].apply(set)
    want = reference[reference["rank"] < k].groupby("qid")["docno"].apply(set)
    return float(np.mean([len(got[q] & want[q]) / k for q in want.index]))


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir())


# -- layout -----------------------------------------------------------------------------------------


def test_layout_meta_and_accessors(index: DenseIndex, corpus: dict) -> None:
    meta = json.loads((index.path / "pt_meta.json").read_text())
    assert meta["type"] == "dense_index" and meta["format"] == "flex"  # pyterrier-dr's FlexIndex layout
    assert (meta["package_hint"], meta["format_version"]) == ("pyterrier-hybrid", 2)
    assert (meta["vec_size"], meta["doc_count"]) == (DIM, N_DOCS)
    assert meta["metadata"] == {"model": "synthetic", "seed": 0}
    assert {"docnos.npids", "vecs.f4", "pt_meta.json"} <= set(leftovers(index.path))
    assert (len(index), index.dim, index.metadata) == (N_DOCS, DIM, meta["metadata"])
    assert isinstance(index.vectors(), np.memmap) and index.docnos().dtype.kind == "U"
    assert index.vectors().dtype == np.float32 and not index.vectors().flags.writeable
    assert not index.docnos().flags.writeable
    np.testing.assert_array_equal(index.vectors(), corpus["vectors"])
    np.testing.assert_array_equal(index.docnos(), corpus["docnos"])
    assert isinstance(DenseIndex.load(str(index.path)), DenseIndex) and index.built()


# -- exact retrieval ----------------------------------------------------------------------------


def test_exact_full_ranking_equals_brute_force(exact_run: pd.DataFrame, corpus: dict) -> None:
    docnos, scores = brute_force(corpus["queries"], corpus["vectors"], corpus["docnos"])
    assert exact_run.columns.tolist() == ["qid", "query", "query_vec", "docno", "docid", "score", "rank"]
    assert exact_run.groupby("qid").size().eq(N_DOCS).all()
    for i, qid in enumerate(corpus["topics"]["qid"]):
        np.testing.assert_array_equal(per_query(exact_run, qid, "docno"), docnos[i])
        np.testing.assert_array_equal(per_query(exact_run, qid, "score"), scores[i])
        np.testing.assert_array_equal(per_query(exact_run, qid, "rank"), np.arange(N_DOCS))
    docids = exact_run["docid"].to_numpy()
    np.testing.assert_array_equal(corpus["docnos"][docids], exact_run["docno"].to_numpy())


def test_cutoff_and_batching_do_not_change_results(
    index: DenseIndex, query_frame: pd.DataFrame, exact_run: pd.DataFrame
) -> None:
    top10 = exact_run[exact_run["rank"] < 10].reset_index(drop=True)
    small_blocks = index.retriever(num_results=10, batch_size=333)(query_frame)
    pd.testing.assert_frame_equal(small_blocks, top10)
    one_by_one = pd.concat([index.retriever(num_results=10)(query_frame.iloc[[i]]) for i in range(3)])
    pd.testing.assert_frame_equal(one_by_one.reset_index(drop=True), top10[top10["qid"].isin(["q0", "q1", "q2"])])
    fused = (index.retriever() % 10).compile()
    assert isinstance(fused, DenseRetriever) and fused.num_results == 10
    assert index.retriever(num_results=5).fuse_rank_cutoff(10).num_results == 5
    assert index.retriever(backend="hnsw").fuse_rank_cutoff(10) is None
    pd.testing.assert_frame_equal(fused(query_frame), top10)
    without_vec = index.retriever(num_results=10, drop_query_vec=True)(query_frame)
    pd.testing.assert_frame_equal(without_vec, top10.drop(columns="query_vec"))


def test_exact_matches_pyterrier_dr(
    corpus: dict, query_frame: pd.DataFrame, exact_run: pd.DataFrame, tmp_path: Path
) -> None:
    import pyterrier_dr

    flex = pyterrier_dr.FlexIndex(str(tmp_path / "flex"), verbose=False)
    flex.index({"docno": d, "doc_vec": v} for d, v in zip(corpus["docnos"], corpus["vectors"], strict=True))
    theirs = flex.np_retriever(num_results=100)(query_frame)
    ours = exact_run[exact_run["rank"] < 100]
    for qid in corpus["topics"]["qid"]:
        np.testing.assert_array_equal(per_query(ours, qid, "docno"), per_query(theirs, qid, "docno"))
        np.testing.assert_allclose(per_query(ours, qid, "score"), per_query(theirs, qid, "score"), rtol=1e-5)


def test_equal_scores_ordered_by_docno_descending_like_trec_eval(tmp_path: Path) -> None:
    # exactly representable dot products, so the ties are exact whatever the summation order
    vectors = np.array(
        [[1, 0, 0], [0.6, 0.8, 0], [1, 0, 0], [0.6, 0, 0.8], [1, 0, 0], [0, 1, 0]], dtype=np.float32
    )
    docnos = ["a", "d1", "c", "d0", "b", "z"]
    index = DenseIndex.build(tmp_path / "ties", docnos, vectors)
    queries = pd.DataFrame({"qid": ["q"], "query_vec": [np.array([1, 0, 0], np.float32)]})
    expected = ["c", "b", "a", "d1", "d0", "z"]
    for batch_size in (1, 2, 8192):
        run = index.retriever(batch_size=batch_size)(queries)
        assert run["docno"].tolist() == expected
        assert index.retriever(num_results=2, batch_size=batch_size)(queries)["docno"].tolist() == ["c", "b"]
    # trec_eval sees the same order: with only "a" relevant, reciprocal rank is 1/3 either way
    run_dict = {"q": dict(zip(run["docno"], run["score"].astype(float), strict=True))}
    evaluated = pytrec_eval.RelevanceEvaluator({"q": {"a": 1}}, {"recip_rank"}).evaluate(run_dict)
    assert evaluated["q"]["recip_rank"] == pytest.approx(1 / (1 + expected.index("a")))


def test_empty_query_frame(index: DenseIndex) -> None:
    retriever = index.retriever()
    empty = pd.DataFrame({"qid": pd.Series(dtype=str), "query_vec": pd.Series(dtype=object)})
    out = retriever(empty)
    assert len(out) == 0
    assert out.columns.tolist() == ["qid", "query_vec", "docno", "docid", "score", "rank"]
    assert pt.inspect.transformer_outputs(retriever, ["qid", "query_vec"]) == out.columns.tolist()
    assert pt.inspect.transformer_inputs(retriever) == [["qid", "query_vec"]]


# -- approximate backends -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "params"), [("hnsw", {"M": 32, "ef_construction": 200, "ef_search": 128}), ("ivf", {"n_probe": 16})]
)
def test_ann_recall_cache_and_exact_rescoring(
    index: DenseIndex, query_frame: pd.DataFrame, exact_run: pd.DataFrame, backend: str, params: dict
) -> None:
    retriever = index.retriever(backend=backend, num_results=100, **params)
    run = retriever(query_frame)
    recall = recall_at(run, exact_run, 100)
    info = retriever.ann_info()
    print(f"\n{backend} {retriever.backend_params}: recall@100={recall:.4f}, build {info['build_seconds']} s")
    assert recall >= 0.95
    assert info["backend"] == backend and info["count"] == N_DOCS
    assert info["build_params"].items() <= retriever.backend_params.items()
    assert len(list((index.path / "ann").glob(f"{backend}_*/index.faiss"))) == 1
    # candidates are re-scored exactly: same scores as the exact run, same tie order
    merged = run.merge(exact_run[["qid", "docno", "score"]], on=["qid", "docno"], suffixes=("", "_exact"))
    assert len(merged) == len(run) and (merged["score"] == merged["score_exact"]).all()
    assert run.groupby("qid")["score"].apply(lambda s: s.is_monotonic_decreasing).all()
    # a fresh object loads the cached structure instead of rebuilding it
    reloaded = DenseIndex(index.path).retriever(backend=backend, num_results=100, **params)
    assert reloaded.ann_info() == info
    pd.testing.assert_frame_equal(reloaded(query_frame), run)


def test_backend_parameter_errors(index: DenseIndex) -> None:
    with pytest.raises(ValueError, match="unknown backend 'annoy'"):
        index.retriever(backend="annoy")
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['n_probe'\] for backend 'hnsw'"):
        index.retriever(backend="hnsw", n_probe=3)
    with pytest.raises(ValueError, match="unknown parameter"):
        index.retriever(M=8)
    with pytest.raises(ValueError, match="n_list=5000 exceeds"):
        index.retriever(backend="ivf", n_list=5000)
    with pytest.raises(ValueError, match="num_results must be a positive int"):
        index.retriever(num_results=0)
    assert index.retriever(backend="ivf").backend_params == {"n_list": 64, "n_probe": 16}
    assert index.retriever(backend="hnsw").num_results == 1000


# -- reload and composition ----------------------------------------------------------------------


def test_reload_gives_identical_results(index: DenseIndex, query_frame: pd.DataFrame, exact_run: pd.DataFrame) -> None:
    fresh = DenseIndex(str(index.path))
    run = fresh.retriever(num_results=None, drop_query_vec=True)(query_frame)
    pd.testing.assert_frame_equal(run, exact_run.drop(columns="query_vec"))
    assert fresh.metadata == {"model": "synthetic", "seed": 0}


def test_pipeline_in_experiment_without_warnings(index: DenseIndex, corpus: dict) -> None:
    by_qid = dict(zip(corpus["topics"]["qid"], corpus["queries"], strict=True))
    pipeline = pt.apply.query_vec(lambda row: by_qid[row["qid"]]) >> index.retriever()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = pt.Experiment(
            [pipeline], corpus["topics"], corpus["qrels"], eval_metrics=[ir_measures.RR, ir_measures.R @ 100]
        )
    from_pyterrier = [w for w in caught if "pyterrier" in w.filename or "Validation" in str(w.message)]
    assert not from_pyterrier, [str(w.message) for w in from_pyterrier]
    assert result.loc[0, "RR"] > 0.9 and result.loc[0, "R@100"] == 1.0


def test_indexer_in_pipeline_equals_build(corpus: dict, tmp_path: Path) -> None:
    by_docno = dict(zip(corpus["docnos"], corpus["vectors"], strict=True))
    encoder = pt.apply.doc_vec(lambda row: by_docno[row["docno"]])
    docs = [{"docno": d, "text": f"passage {d}"} for d in corpus["docnos"]]
    index = DenseIndex(tmp_path / "piped")
    built = (encoder >> index.indexer(metadata={"dataset": "synthetic"})).index(docs)
    assert built is index and index.metadata == {"dataset": "synthetic"}
    np.testing.assert_array_equal(index.vectors(), corpus["vectors"])
    np.testing.assert_array_equal(index.docnos(), corpus["docnos"])
    with pytest.raises(FileExistsError, match="already exists; use indexer\\(mode='overwrite'\\)"):
        index.indexer().index(docs[:1])
    index.indexer(mode="overwrite").index([{"docno": "x", "doc_vec": np.ones(3, np.float32)}])
    assert (len(index), index.dim, index.metadata) == (1, 3, {})
    assert leftovers(tmp_path) == ["piped"]


# -- bad input and atomicity ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([], "empty corpus"),
        ([{"docno": "a", "doc_vec": np.ones(4)}, {"docno": "b", "doc_vec": np.ones(5)}], "docno 'b' has shape"),
        ([{"docno": "a", "doc_vec": np.ones(4)}, {"docno": "a", "doc_vec": np.ones(4)}], "docnos must be unique"),
        ([{"docno": "a", "doc_vec": np.array([0.5, np.nan])}], "docno 'a' contains NaN"),
        ([{"docno": 7, "doc_vec": np.ones(2)}], "docnos must be str, got int"),
        ([{"docno": "a", "vec": np.ones(2)}], "needs 'docno' and 'doc_vec'"),
    ],
)
def test_indexer_rejects_bad_records(records: list, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        DenseIndex(tmp_path / "bad").indexer().index(records)
    assert leftovers(tmp_path) == []


def test_build_rejects_bad_arrays(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty corpus"):
        DenseIndex.build(tmp_path / "i", [], np.zeros((0, 8), np.float32))
    with pytest.raises(ValueError, match="2 docnos but 3 vectors"):
        DenseIndex.build(tmp_path / "i", ["a", "b"], np.ones((3, 8), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        DenseIndex.build(tmp_path / "i", ["a", "b"], np.ones((2, 8, 1), np.float32))
    with pytest.raises(ValueError, match="inf"):
        DenseIndex.build(tmp_path / "i", ["a", "b"], np.array([[1.0, 0.0], [np.inf, 0.0]]))
    with pytest.raises(ValueError, match="JSON-serialisable"):
        DenseIndex.build(tmp_path / "i", ["a"], np.ones((1, 2)), metadata={"bad": object()})
    assert leftovers(tmp_path) == []


def test_loading_a_path_that_is_not_an_index(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="path does not exist"):
        len(DenseIndex(tmp_path / "missing"))
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "data.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="has no pt_meta.json"):
        DenseIndex(tmp_path / "plain").retriever()
    (tmp_path / "plain" / "pt_meta.json").write_text('{"type": "sparse_index", "format": "terrier"}')
    with pytest.raises(ValueError, match="not a pyterrier-hybrid dense index"):
        DenseIndex(tmp_path / "plain").vectors()
    assert not DenseIndex(tmp_path / "plain").built()
    with pytest.raises(ValueError, match="refusing to overwrite"):
        DenseIndex.build(tmp_path / "plain", ["a"], np.ones((1, 2)), overwrite=True)
    assert (tmp_path / "plain" / "data.txt").exists()


def test_bad_queries(index: DenseIndex, query_frame: pd.DataFrame) -> None:
    retriever = index.retriever(num_results=5)
    with pytest.raises(pt.validate.InputValidationError):
        retriever(query_frame.drop(columns="query_vec"))
    with pytest.raises(ValueError, match="index dimension 384"):
        retriever(query_frame.head(2).assign(query_vec=[np.ones(3), np.ones(3)]))
    with pytest.raises(ValueError, match="qid 'q1' contains NaN"):
        retriever(query_frame.head(2).assign(query_vec=[np.ones(DIM), np.full(DIM, np.nan)]))


def _failing_records(n_ok: int):
    for i in range(n_ok):
        yield {"docno": f"d{i}", "doc_vec": np.ones(8, np.float32)}
    raise RuntimeError("encoder crashed")


def test_failure_midway_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="encoder crashed"):
        DenseIndex(tmp_path / "idx").indexer().index(_failing_records(5000))  # after a full chunk was written
    assert leftovers(tmp_path) == []
    old = DenseIndex.build(tmp_path / "idx", ["keep"], np.ones((1, 8)))
    with pytest.raises(RuntimeError, match="encoder crashed"):
        old.indexer(mode="overwrite").index(_failing_records(10))
    assert leftovers(tmp_path) == ["idx"]
    assert DenseIndex(tmp_path / "idx").docnos().tolist() == ["keep"]


def test_retrieval_method_and_its_deprecated_backend_name(index: DenseIndex, query_frame: pd.DataFrame) -> None:
    retriever = index.retriever(method="ivf", num_results=10)
    assert (retriever.method, retriever.method_params) == ("ivf", {"n_list": 64, "n_probe": 16})
    assert (retriever.backend, retriever.backend_params) == (retriever.method, retriever.method_params)
    assert "method='ivf'" in repr(retriever)
    with pytest.warns(DeprecationWarning, match="now method="):
        old = index.retriever(backend="ivf", num_results=10)
    assert old.method == "ivf"
    pd.testing.assert_frame_equal(old(query_frame), retriever(query_frame))
    with pytest.raises(ValueError, match="disagree"), pytest.warns(DeprecationWarning):
        index.retriever(method="exact", backend="hnsw")
    # the index's search helpers are public (the retriever uses nothing private)
    assert index.docno_order() is index.docno_order() and index.ann_index("ivf", old.method_params)[1]["count"] == len(index)
