"""A DenseIndex directory is a pyterrier-dr FlexIndex (issue 19 item 6, issue 17 items 3 and 5).

Real XQuAD-R sentences and questions (English and German), embedded by a deterministic bag-of-words
function (a fixed pseudo-random vector per word, summed and normalised): no model, but real ids,
real texts and continuous scores. Old-format (format_version 1, ``hybrid_flat``) directories are
made by hand as the old writer made them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyterrier as pt
import pyterrier_dr
import pytest

from pyterrier_hybrid.index import DEFAULT_NUM_RESULTS, DenseIndex, DenseRetriever

DIM = 64
DOCS_PER_LANG = 700  # two languages: 1400 documents, more than the default cutoff of 1000
TOP = 20


@functools.cache
def _word_vector(word: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng(seed).standard_normal(DIM)


def _words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\w+", text.lower()))


def embed(texts: list[str]) -> np.ndarray:
    vecs = np.stack([np.sum([_word_vector(w) for w in _words(t)], axis=0) for t in texts])
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(data_dir) -> dict:
    from datasets_ext import get_benchmark, load_lang

    bench = get_benchmark("xquad-r")
    docs, queries, seen = [], [], set()
    for lang in ("en", "de"):
        data = load_lang(bench, lang)
        for doc in data.docs[:DOCS_PER_LANG]:
            key = tuple(sorted(_words(doc.text)))
            if key and key not in seen:  # equal bags of words would tie exactly
                seen.add(key)
                docs.append(doc)
        queries.extend(data.queries[:4])
    docnos = np.array([d.doc_id for d in docs])
    topics = pd.DataFrame({"qid": [q.query_id for q in queries], "query": [q.text for q in queries]})
    return {
        "docnos": docnos,
        "vectors": embed([d.text for d in docs]),
        "topics": topics.assign(query_vec=list(embed(topics["query"].tolist()))),
    }


@pytest.fixture(scope="module")
def ours(corpus: dict, tmp_path_factory: pytest.TempPathFactory) -> DenseIndex:
    """Written by our indexer, as ``doc_encoder >> index.indexer()`` does."""
    records = ({"docno": d, "doc_vec": v} for d, v in zip(corpus["docnos"], corpus["vectors"], strict=True))
    index = DenseIndex(tmp_path_factory.mktemp("ours") / "index")
    return index.indexer(metadata={"model": "bag-of-words", "checksum": "abc"}).index(records)


@pytest.fixture(scope="module")
def exact_run(ours: DenseIndex, corpus: dict) -> pd.DataFrame:
    return ours.retriever(num_results=None, drop_query_vec=True)(corpus["topics"])


def _ranking(run: pd.DataFrame, qid: str, column: str) -> np.ndarray:
    return run[run["qid"] == qid].sort_values("rank")[column].to_numpy()


def _brute_force(corpus: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per query: docnos and float32 scores, score descending, equal scores by docno descending."""
    queries = np.stack(corpus["topics"]["query_vec"]).astype(np.float64)
    scores = (queries @ corpus["vectors"].T.astype(np.float64)).astype(np.float32)
    docnos = corpus["docnos"]
    by_docno_desc = np.argsort(docnos)[::-1]
    order = by_docno_desc[np.argsort(-scores[:, by_docno_desc], axis=1, kind="stable")]
    return docnos[order], np.take_along_axis(scores, order, axis=1)


def _old_format_dir(path: Path, docnos: np.ndarray, vectors: np.ndarray, metadata: dict) -> Path:
    """A format_version 1 directory, as pyterrier-hybrid wrote them before the FlexIndex layout."""
    path.mkdir(parents=True)
    np.ascontiguousarray(vectors, dtype="<f4").tofile(path / "vecs.f4")
    np.save(path / "docnos.npy", np.array(docnos, dtype=str), allow_pickle=False)
    meta = {"type": "dense_index", "format": "hybrid_flat", "package_hint": "pyterrier-hybrid", "format_version": 1,
            "dim": int(vectors.shape[1]), "count": len(docnos), "metadata": metadata}
    (path / "pt_meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return path


# -- our directory is a FlexIndex -------------------------------------------------------------------


def test_layout_is_flex_with_our_keys(ours: DenseIndex, corpus: dict) -> None:
    assert sorted(p.name for p in ours.path.iterdir()) == ["docnos.npids", "pt_meta.json", "vecs.f4"]
    meta = json.loads((ours.path / "pt_meta.json").read_text())
    assert meta == {
        "type": "dense_index", "format": "flex", "vec_size": DIM, "doc_count": len(corpus["docnos"]),
        "package_hint": "pyterrier-hybrid", "format_version": 2,
        "metadata": {"model": "bag-of-words", "checksum": "abc"},
    }
    assert len(corpus["docnos"]) > DEFAULT_NUM_RESULTS
    assert pt.inspect.artifact_type_format(DenseIndex) == ("dense_index", "flex")


def test_flex_index_opens_our_directory(ours: DenseIndex, corpus: dict) -> None:
    flex = pyterrier_dr.FlexIndex(str(ours.path), verbose=False)
    n = len(corpus["docnos"])
    assert len(flex) == len(ours) == n
    lookup = flex.docnos()
    assert list(lookup) == corpus["docnos"].tolist() == ours.docnos().tolist()
    np.testing.assert_array_equal(lookup.fwd[np.arange(n)], corpus["docnos"])
    np.testing.assert_array_equal(lookup.inv[corpus["docnos"]], np.arange(n))  # the inverse lookup works too
    np.testing.assert_array_equal(flex.np_vecs(), corpus["vectors"])
    np.testing.assert_array_equal(flex.np_vecs(), ours.vectors())


def test_artifact_load_gives_a_flex_index(ours: DenseIndex) -> None:
    loaded = pt.Artifact.load(str(ours.path))
    assert isinstance(loaded, pyterrier_dr.FlexIndex) and len(loaded) == len(ours)
    assert isinstance(DenseIndex.load(str(ours.path)), DenseIndex)  # our class still opens it as ours


@pytest.mark.parametrize("retriever", ["np_retriever", "torch_retriever"])
def test_flex_retrievers_equal_our_exact_retriever(
    ours: DenseIndex, corpus: dict, exact_run: pd.DataFrame, retriever: str
) -> None:
    flex = pyterrier_dr.FlexIndex(str(ours.path), verbose=False)
    theirs = getattr(flex, retriever)(num_results=TOP)(corpus["topics"])
    mine = ours.retriever(num_results=TOP)(corpus["topics"])
    for qid in corpus["topics"]["qid"]:
        scores = _ranking(mine, qid, "score")
        # distinct scores: the order does not depend on how either side sums in float32
        assert np.diff(_ranking(exact_run, qid, "score")[: TOP + 1]).max() < -1e-5, qid
        np.testing.assert_array_equal(_ranking(theirs, qid, "docno"), _ranking(mine, qid, "docno"))
        np.testing.assert_array_equal(_ranking(theirs, qid, "docid"), _ranking(mine, qid, "docid"))
        np.testing.assert_allclose(_ranking(theirs, qid, "score"), scores, rtol=1e-6, atol=1e-6)


def test_flex_scorer_rescores_our_run_by_docno(ours: DenseIndex, corpus: dict) -> None:
    """FlexIndex's scorer maps docnos to rows through the inverse lookup of our docnos.npids."""
    flex = pyterrier_dr.FlexIndex(str(ours.path), verbose=False)
    run = ours.retriever(num_results=50)(corpus["topics"])
    rescored = flex.np_scorer()(run.drop(columns=["docid", "score", "rank"]))
    merged = run.merge(rescored[["qid", "docno", "score"]], on=["qid", "docno"], suffixes=("", "_flex"))
    assert len(merged) == len(run)
    np.testing.assert_allclose(merged["score_flex"], merged["score"], rtol=1e-6, atol=1e-6)


# -- we open what FlexIndex writes --------------------------------------------------------------------


def test_we_open_a_directory_written_by_flex_index(
    ours: DenseIndex, corpus: dict, exact_run: pd.DataFrame, tmp_path: Path
) -> None:
    flex = pyterrier_dr.FlexIndex(str(tmp_path / "theirs"), verbose=False)
    flex.index({"docno": d, "doc_vec": v} for d, v in zip(corpus["docnos"], corpus["vectors"], strict=True))
    assert "docnos.npy" not in {p.name for p in (tmp_path / "theirs").iterdir()}
    index = DenseIndex(tmp_path / "theirs")
    assert index.built() and (len(index), index.dim, index.metadata) == (len(corpus["docnos"]), DIM, {})
    np.testing.assert_array_equal(index.docnos(), corpus["docnos"])
    np.testing.assert_array_equal(index.vectors(), corpus["vectors"])
    run = index.retriever(num_results=None, drop_query_vec=True)(corpus["topics"])
    pd.testing.assert_frame_equal(run, exact_run)
    docnos, scores = _brute_force(corpus)  # exact: float64 products rounded to float32, the tie rule
    for i, qid in enumerate(corpus["topics"]["qid"]):
        np.testing.assert_array_equal(_ranking(run, qid, "docno"), docnos[i])
        np.testing.assert_array_equal(_ranking(run, qid, "score"), scores[i])
    # an approximate backend builds its faiss structure inside their directory and still opens
    hnsw = index.retriever(backend="hnsw", num_results=TOP)(corpus["topics"])
    assert hnsw.groupby("qid").size().eq(TOP).all()
    assert len(pyterrier_dr.FlexIndex(str(tmp_path / "theirs"), verbose=False)) == len(index)


# -- the old format still opens -----------------------------------------------------------------------


def test_old_format_directory_still_opens(corpus: dict, exact_run: pd.DataFrame, tmp_path: Path) -> None:
    old = _old_format_dir(tmp_path / "old", corpus["docnos"], corpus["vectors"], {"model": "bag-of-words"})
    index = DenseIndex(old)
    assert index.built() and (len(index), index.dim, index.metadata) == (len(corpus["docnos"]), DIM,
                                                                         {"model": "bag-of-words"})
    np.testing.assert_array_equal(index.docnos(), corpus["docnos"])
    np.testing.assert_array_equal(index.vectors(), corpus["vectors"])
    pd.testing.assert_frame_equal(index.retriever(num_results=None, drop_query_vec=True)(corpus["topics"]), exact_run)
    loaded = pt.Artifact.load(str(old))  # entry point dense_index.hybrid_flat
    assert isinstance(loaded, DenseIndex) and len(loaded) == len(index)
    # overwriting it writes the new layout
    DenseIndex.build(old, corpus["docnos"][:3], corpus["vectors"][:3], overwrite=True)
    assert sorted(p.name for p in old.iterdir()) == ["docnos.npids", "pt_meta.json", "vecs.f4"]
    assert len(pyterrier_dr.FlexIndex(str(old), verbose=False)) == 3


def test_old_vector_cache_entry_is_reused(corpus: dict, tmp_path: Path) -> None:
    from pyterrier_hybrid.cache import VectorCache, checksum

    ids, vectors = corpus["docnos"][:300], corpus["vectors"][:300]
    cache = VectorCache(tmp_path)
    _old_format_dir(cache.path("k"), ids, vectors, {"model": "m", "checksum": checksum(ids, vectors)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not taken for a damaged entry
        got = cache.get("k", ids.tolist())
    np.testing.assert_array_equal(got, vectors)


# -- the retriever's default --------------------------------------------------------------------------


def test_retriever_default_is_1000_and_none_is_the_full_ranking(
    ours: DenseIndex, corpus: dict, exact_run: pd.DataFrame
) -> None:
    n = len(corpus["docnos"])
    default = ours.retriever()
    assert default.num_results == DEFAULT_NUM_RESULTS == 1000
    assert DenseRetriever(ours).num_results == 1000
    assert ours.retriever(num_results=None).num_results == n
    run = default(corpus["topics"]).drop(columns="query_vec")
    assert run.groupby("qid").size().eq(1000).all()
    assert exact_run.groupby("qid").size().eq(n).all()
    pd.testing.assert_frame_equal(run, exact_run[exact_run["rank"] < 1000].reset_index(drop=True))
    assert ours.retriever(backend="hnsw", num_results=None).num_results == 1000


# -- docnos npids cannot store by itself ---------------------------------------------------------------


def test_one_document_and_unicode_docnos(tmp_path: Path) -> None:
    # npids' own builder (FlexIndex's indexer) writes a one-document lookup it cannot read back
    one = DenseIndex.build(tmp_path / "one", ["keep"], np.ones((1, 4), np.float32))
    assert pyterrier_dr.FlexIndex(str(one.path), verbose=False).docnos().fwd[0] == "keep"
    assert one.docnos().tolist() == ["keep"]
    names = ["thé_0", "ไทย_1_2", "a", "日本_10"]
    uni = DenseIndex.build(tmp_path / "uni", names, np.eye(4, dtype=np.float32))
    assert uni.docnos().tolist() == names
    flex = pyterrier_dr.FlexIndex(str(uni.path), verbose=False)
    assert list(flex.docnos()) == names and flex.docnos().inv["ไทย_1_2"] == 1
    with pytest.raises(ValueError, match="cannot be stored"):
        DenseIndex.build(tmp_path / "nul", ["a\x00", "b"], np.eye(2, dtype=np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "uni"]
