"""A model directory in other packages: sentence-transformers, pyterrier-dr, PyTerrier artifacts."""

from __future__ import annotations

import json
import tarfile

import ir_datasets
import numpy as np
import pyterrier as pt
import pytest

from pyterrier_hybrid import DenseEncoder, evaluate, merge_models

pytestmark = pytest.mark.slow


def _texts(n: int = 24) -> tuple[list[str], list[str]]:
    ds = ir_datasets.load("xquad-r/de-en")
    queries = [q.text for _, q in zip(range(n), ds.queries_iter(), strict=False)]
    docs = [d.text for _, d in zip(range(n), ds.docs_iter(), strict=False)]
    return queries, docs


def test_sentence_transformers_and_pyterrier_dr_e5_give_identical_vectors(default_model_dir):
    import pyterrier_dr
    from sentence_transformers import SentenceTransformer

    queries, docs = _texts()
    st = SentenceTransformer(str(default_model_dir), device="cpu")  # its stored prompts: query: / passage:
    e5 = pyterrier_dr.E5(str(default_model_dir), batch_size=32)
    st_q = st.encode_query(queries, batch_size=32, normalize_embeddings=True)
    st_d = st.encode_document(docs, batch_size=32, normalize_embeddings=True)
    np.testing.assert_array_equal(st_q, e5.encode_queries(queries))
    np.testing.assert_array_equal(st_d, e5.encode_docs(docs))
    ours = DenseEncoder(str(default_model_dir), backend="torch", batch_size=32, cache=False)
    np.testing.assert_allclose(ours.encode_queries(queries, 32), st_q, atol=1e-6)
    np.testing.assert_allclose(ours.encode_docs(docs, 32), st_d, atol=1e-6)


def test_hgf_bi_encoder_is_silently_much_weaker(default_model_dir, default_encoder):
    # HgfBiEncoder takes the CLS vector and no prompts: it loads the directory without a word and ranks badly
    import pyterrier_dr

    hgf = pyterrier_dr.HgfBiEncoder.from_pretrained(str(default_model_dir))
    kw = dict(languages=["en"], settings=["mono"], limit_queries=40, verbose=False)  # one language: mono only
    theirs = evaluate(hgf, **kw).summary()["mono_map"].iloc[0]
    ours = evaluate(default_encoder, **kw).summary()["mono_map"].iloc[0]
    # measured (first 40 English questions, monolingual): ours 0.807, HgfBiEncoder 0.575
    assert ours > 0.7 and theirs < ours - 0.15, (ours, theirs)


def test_saved_model_directory_is_a_pyterrier_artifact(tiny_model_dir, tmp_path):
    out = merge_models([str(tiny_model_dir), str(tiny_model_dir)], [0.5, 0.5], out=tmp_path / "merged")
    assert json.loads((out / "pt_meta.json").read_text()) == {
        "type": "dense_encoder", "format": "sentence_transformers", "package_hint": "pyterrier-hybrid"}
    enc = DenseEncoder.load(str(out))  # pt.Artifact.load on the class; the entry point does the same for pt.Artifact
    assert isinstance(enc, DenseEncoder) and isinstance(enc, pt.Artifact) and enc.path == out
    assert enc.encode_queries(["wer gewann?"]).shape == (1, 32)
    package = tmp_path / "merged.tar.lz4"
    enc.build_package(str(package))
    from lz4.frame import LZ4FrameFile

    with LZ4FrameFile(package) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
        names = {m.name for m in tar}
    assert {"pt_meta.json", "modules.json", "model.safetensors"} <= names
    assert DenseEncoder(str(tiny_model_dir), cache=False).path == tiny_model_dir  # any local directory
