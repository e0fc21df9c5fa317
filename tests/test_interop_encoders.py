"""evaluate() takes encoders from elsewhere: a pyterrier-dr bi-encoder, or any pair of PyTerrier
transformers with a name (issue 17). Real data, the real offline model."""

from __future__ import annotations

import pandas as pd
import pyterrier as pt
import pytest

from pyterrier_hybrid import TransformerEncoder, evaluate

pytestmark = pytest.mark.slow
LANGS, N = ["de", "en"], 30


def test_a_transformer_pair_gives_our_encoders_numbers(default_encoder):
    pair = TransformerEncoder(default_encoder.query_encoder(), default_encoder.doc_encoder(), name="pair")
    res = evaluate([default_encoder, pair], names=["ours", "pair"], languages=LANGS, limit_queries=N,
                   settings=["mono", "cross"], verbose=False)
    s = res.summary()
    # the same network and vectors through PyTerrier transformers (batches may be composed differently)
    assert s.loc["pair", "mono_map"] == pytest.approx(s.loc["ours", "mono_map"], abs=2e-3)
    assert s.loc["pair", "cross_map"] == pytest.approx(s.loc["ours", "cross_map"], abs=2e-3)
    models = {m["name"]: m for m in res.config["models"]}
    assert models["pair"]["backend"] == "external" and models["pair"]["fingerprint"] is None


def test_a_pyterrier_dr_bi_encoder_is_evaluated(default_model_dir):
    import pyterrier_dr

    sbert = pyterrier_dr.SBertBiEncoder(str(default_model_dir))  # no E5 prompts: weaker, far above random
    # one language (mono: its ~1200 candidates are encoded once, by pyterrier-dr, with no cache)
    res = evaluate(sbert, languages=["en"], limit_queries=N, settings=["mono"], verbose=False)
    assert res.systems == [str(default_model_dir).rstrip("/").rsplit("/", 1)[-1]]
    assert res.summary()["mono_map"].iloc[0] > 0.3  # random: about 1/1200


def test_bad_pairs_are_explained():
    class NoVec(pt.Transformer):
        def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
            return inp

    with pytest.raises(ValueError, match="needs a non-empty name"):
        TransformerEncoder(NoVec(), NoVec(), name="")
    with pytest.raises(TypeError, match="doc_encoder must be a PyTerrier transformer"):
        TransformerEncoder(NoVec(), object(), name="x")
    enc = TransformerEncoder(NoVec(), NoVec(), name="novec")
    with pytest.raises(ValueError, match="novec: the query encoder returned no 'query_vec' column"):
        enc.cached_vectors("c", "query", ["q1"], ["a question"])
