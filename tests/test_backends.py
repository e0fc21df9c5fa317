"""Encoding backends on the real offline model: ONNX fp32 equals torch, int8 stays close, caching,
clear errors, nothing half-written."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from datasets_ext import get_benchmark, load_lang

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def texts(data_dir) -> tuple[list[str], list[str]]:
    """Questions and candidates of four scripts (Latin, Han, Arabic, Devanagari), long and short."""
    bench = get_benchmark("xquad-r")
    qs, ds = [], []
    for lang in ("de", "zh", "ar", "hi"):
        raw = load_lang(bench, lang)
        qs += [q.text for q in raw.queries[:25]]
        ds += [d.text for d in raw.docs[:25]]
    return qs, ds


@pytest.fixture(scope="module")
def torch_encoder(default_model_dir):
    from pyterrier_hybrid import DenseEncoder

    return DenseEncoder(str(default_model_dir), backend="torch", cache=False)


@pytest.fixture(scope="module")
def reference(torch_encoder, texts) -> tuple[np.ndarray, np.ndarray]:
    assert type(torch_encoder.model[0].auto_model).__name__ == "BertModel"
    return torch_encoder.encode_queries(texts[0]), torch_encoder.encode_docs(texts[1])


@pytest.fixture(scope="module")
def backend_home(tmp_path_factory):
    return tmp_path_factory.mktemp("phh")


def _encoder(default_model_dir, backend, home, **kw):
    from pyterrier_hybrid import DenseEncoder

    mp = pytest.MonkeyPatch()
    mp.setenv("PYTERRIER_HYBRID_HOME", str(home))
    try:
        return DenseEncoder(str(default_model_dir), backend=backend, cache=False, **kw)
    finally:
        mp.undo()


def test_defaults_and_fingerprints(default_model_dir, torch_encoder, backend_home):
    from pyterrier_hybrid import DenseEncoder
    from pyterrier_hybrid.backends import DEFAULT_BACKEND, DEFAULT_BATCH_SIZES

    enc = _encoder(default_model_dir, None, backend_home)
    assert enc.backend == DEFAULT_BACKEND == "torch"  # chosen by benchmarks/bench_encoding.py
    assert enc.batch_size == DEFAULT_BATCH_SIZES["torch"] and enc.fingerprint == enc.weights_fingerprint
    enc = _encoder(default_model_dir, "onnx", backend_home)
    assert enc.batch_size == DEFAULT_BATCH_SIZES["onnx"]
    assert enc.fingerprint == enc.weights_fingerprint + "+onnx"

    assert DenseEncoder(torch_encoder.model, cache=False).backend == "torch"  # e.g. a model being trained
    # an encoder on a model that already runs on ONNX keeps its backend and fingerprint
    again = DenseEncoder(enc.model, cache=False)
    assert again.backend == "onnx" and again.fingerprint == enc.fingerprint


def test_onnx_equals_torch(default_model_dir, backend_home, texts, reference):
    enc = _encoder(default_model_dir, "onnx", backend_home)
    q, d = enc.encode_queries(texts[0]), enc.encode_docs(texts[1])
    assert (q * reference[0]).sum(1).min() > 0.99999
    assert (d * reference[1]).sum(1).min() > 0.99999
    one = enc.encode_queries(texts[0][:1])  # batch of one, no padding
    assert float(one[0] @ reference[0][0]) > 0.99999
    # same ranking of candidates for every question
    assert np.array_equal(np.argsort(-(q @ d.T), axis=1)[:, :5], np.argsort(-(reference[0] @ reference[1].T), axis=1)[:, :5])


def test_int8_backends_stay_close(default_model_dir, backend_home, texts, reference):
    # torch's fbgemm int8 is the least accurate of the two (measured: 87 % top-1 agreement here)
    for backend, min_cos, min_agree in (("onnx-int8", 0.98, 0.9), ("torch-int8", 0.9, 0.8)):
        enc = _encoder(default_model_dir, backend, backend_home)
        q, d = enc.encode_queries(texts[0]), enc.encode_docs(texts[1])
        cos_q, cos_d = (q * reference[0]).sum(1), (d * reference[1]).sum(1)
        assert cos_q.min() > min_cos and cos_d.min() > min_cos, backend
        assert cos_q.max() < 0.99999, f"{backend} should really be quantized"
        # the best candidate of most questions is unchanged
        agree = (np.argmax(q @ d.T, 1) == np.argmax(reference[0] @ reference[1].T, 1)).mean()
        assert agree >= min_agree, (backend, agree)


def test_exported_models_are_cached(default_model_dir, backend_home, monkeypatch):
    from pyterrier_hybrid import backends

    _encoder(default_model_dir, "onnx-int8", backend_home)  # built by the tests above or now
    files = sorted(p.name for p in (backend_home / "backends").rglob("*.onnx"))
    assert files == ["model-int8.onnx", "model.onnx"]

    def boom(*a, **k):
        raise AssertionError("should not export or quantize again")

    monkeypatch.setattr(backends, "_export", boom)
    monkeypatch.setattr(backends, "_quantize", boom)
    _encoder(default_model_dir, "onnx", backend_home)
    _encoder(default_model_dir, "onnx-int8", backend_home)


def test_failed_export_leaves_nothing(default_model_dir, tmp_path, monkeypatch):
    from pyterrier_hybrid import backends

    def fail(model, names, out):
        out.write_bytes(b"half an onnx file")
        raise RuntimeError("export interrupted")

    monkeypatch.setattr(backends, "_export", fail)
    with pytest.raises(RuntimeError, match="export interrupted"):
        _encoder(default_model_dir, "onnx", tmp_path)
    left = [p for p in (tmp_path / "backends").rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert left == []


def test_backend_errors(default_model_dir, torch_encoder, backend_home, monkeypatch):
    from pyterrier_hybrid import DenseEncoder
    from pyterrier_hybrid.backends import BackendError

    with pytest.raises(BackendError, match="unknown backend 'fp16'; valid: torch, torch-int8, onnx, onnx-int8"):
        DenseEncoder(torch_encoder.model, backend="fp16", cache=False)
    onnx_model = _encoder(default_model_dir, "onnx", backend_home).model
    with pytest.raises(BackendError, match="already runs on backend 'onnx'"):
        DenseEncoder(onnx_model, backend="torch-int8", cache=False)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(BackendError, match=r"pip install 'pyterrier-hybrid\[onnx\]'"):
        _encoder(default_model_dir, "onnx", backend_home)


def test_in_memory_model_is_not_modified(torch_encoder, backend_home, monkeypatch):
    from pyterrier_hybrid import DenseEncoder

    monkeypatch.setenv("PYTERRIER_HYBRID_HOME", str(backend_home))
    net = torch_encoder.model[0].auto_model
    enc = DenseEncoder(torch_encoder.model, backend="onnx", cache=False)
    assert torch_encoder.model[0].auto_model is net  # the caller's model keeps its torch network
    assert type(enc.model[0].auto_model).__name__ == "OnnxNetwork"


def test_vector_cache_is_per_backend(default_model_dir, backend_home, tmp_path, texts, monkeypatch):
    from pyterrier_hybrid import DenseEncoder, VectorCache

    monkeypatch.setenv("PYTERRIER_HYBRID_HOME", str(backend_home))
    cache = VectorCache(tmp_path)
    a = DenseEncoder(str(default_model_dir), backend="onnx", cache=cache)
    b = DenseEncoder(str(default_model_dir), backend="onnx-int8", cache=cache)
    ids = [f"q{i}" for i in range(10)]
    va = a.cached_vectors("x", "query", ids, texts[0][:10])
    vb = b.cached_vectors("x", "query", ids, texts[0][:10])
    assert len(list(tmp_path.iterdir())) == 2 and not np.array_equal(va, vb)
