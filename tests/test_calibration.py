"""Language calibration: centring, per-language score standardisation and language-subspace removal, on the
real model and data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import pytrec_eval

from pyterrier_hybrid import LanguageCentering, LanguageScoreNorm, evaluate
from pyterrier_hybrid.calibration import (
    LanguageSubspaceRemoval,
    calibrate_scores,
    check_calibrations,
    language_means,
    language_subspace,
)
from pyterrier_hybrid.study import load_languages

LANGS = ["en", "de"]


@pytest.fixture(scope="module")
def calibrated(default_encoder):
    return evaluate(default_encoder, languages=LANGS, limit_queries=30, calibration="none,center,zscore,lsar",
                    verbose=False)


def _rows(result, system, setting):
    pq = result.per_query
    return pq[(pq.system == system) & (pq.setting == setting)].set_index(["query_lang", "doc_lang", "qid"])


def test_calibration_adds_systems_and_leaves_mono_and_cross_unchanged(calibrated):
    base = calibrated.systems[0]
    assert calibrated.systems == [base, f"{base}+center", f"{base}+zscore", f"{base}+lsar"]
    assert calibrated.config["calibration"] == ["none", "center", "zscore", "lsar"]
    for cal in ("center", "zscore"):
        for setting in ("mono", "cross"):
            pd.testing.assert_frame_equal(_rows(calibrated, base, setting).drop(columns="system"),
                                          _rows(calibrated, f"{base}+{cal}", setting).drop(columns="system"))
    for setting in ("mono", "cross"):  # lsar moves vectors within a language: its own rows, one per query
        own, plain = _rows(calibrated, f"{base}+lsar", setting), _rows(calibrated, base, setting)
        assert own.index.equals(plain.index)
        assert not np.allclose(own["AP"].to_numpy(), plain["AP"].to_numpy())


def _projection(means: dict[str, np.ndarray]) -> np.ndarray:
    """I - Q Q^T, Q an orthonormal basis (QR) of the centred language means: lsar's projection."""
    m = np.stack(list(means.values()))
    q, _ = np.linalg.qr((m - m.mean(axis=0)).T)
    return np.eye(m.shape[1]) - q[:, : len(m) - 1] @ q[:, : len(m) - 1].T


def _brute_force_ap(default_encoder, method: str, setting: str = "multi") -> dict[str, float]:
    """The pool (or each mono pair) ranked from scratch: centred or projected vectors (or z-scored
    rows), AP by pytrec_eval."""
    langs = load_languages("xquad-r", LANGS, limit_queries=30)
    dv = {d: default_encoder.cached_vectors(f"xquad-r/{d}", "doc", list(langs[d].docnos),
                                            [default_encoder.doc_text({"text": t, "context": c})
                                             for t, c in zip(langs[d].docs, langs[d].contexts, strict=True)])
          for d in LANGS}
    means = {d: dv[d].astype(np.float64).mean(axis=0) for d in LANGS}
    proj = _projection(means)
    out = {}
    for q in LANGS:
        data = langs[q]
        pool = LANGS if setting == "multi" else [q]
        docnos = [n for d in pool for n in langs[d].docnos]
        qv = default_encoder.cached_vectors(f"xquad-r/{q}?limit=30", "query", list(data.qids), data.queries)
        blocks = []
        for d in pool:
            if method == "lsar":  # the raw float32 scores, less the part of the projected-out subspace
                raw = (qv.astype(np.float64) @ dv[d].astype(np.float64).T).astype(np.float32).astype(np.float64)
                full = qv.astype(np.float64) @ dv[d].astype(np.float64).T
                blocks.append(raw - (full - (qv.astype(np.float64) @ proj) @ (dv[d].astype(np.float64) @ proj).T))
            elif method == "center":
                blocks.append((qv.astype(np.float64) @ (dv[d].astype(np.float64) - means[d]).T).astype(np.float32))
            else:
                s = (qv.astype(np.float64) @ dv[d].astype(np.float64).T).astype(np.float32).astype(np.float64)
                blocks.append((s - s.mean(1, keepdims=True)) / s.std(1, keepdims=True))
        scores = np.concatenate(blocks, axis=1)
        run = {qid: {dn: float(v) for dn, v in zip(docnos, row, strict=True)} for qid, row in zip(data.qids, scores,
                                                                                                strict=True)}
        qrels = {qid: {langs[d].docnos[langs[d].answer_col[pid]]: 1 for d in pool if pid in langs[d].answer_col}
                 for qid, pid in zip(data.qids, data.pids, strict=True)}
        for qid, m in pytrec_eval.RelevanceEvaluator(qrels, {"map"}).evaluate(run).items():
            out[qid] = m["map"]
    return out


@pytest.mark.parametrize("method,setting", [("center", "multi"), ("zscore", "multi"), ("lsar", "multi"),
                                            ("lsar", "mono")])
def test_calibrated_pool_equals_brute_force(calibrated, default_encoder, method, setting):
    ours = _rows(calibrated, f"{calibrated.systems[0]}+{method}", setting).reset_index().set_index("qid")["AP"]
    oracle = _brute_force_ap(default_encoder, method, setting)
    assert len(ours) == len(oracle) == 60
    np.testing.assert_allclose(ours.loc[list(oracle)].to_numpy(), list(oracle.values()), rtol=0, atol=1e-12)


def test_centring_reduces_language_bias_on_real_data(calibrated):
    """The effect the method is for (measured: the untuned model's rank distance shrinks several-fold)."""
    base = calibrated.systems[0]
    rd = {s: _rows(calibrated, s, "multi")["RankDistance"].mean() for s in (base, f"{base}+center", f"{base}+lsar")}
    assert rd[f"{base}+center"] < 0.8 * rd[base]
    assert rd[f"{base}+lsar"] < 0.8 * rd[base]


def test_calibration_source_must_cover_the_languages(default_encoder):
    with pytest.raises(ValueError, match=r"mlqa-r has no candidates in el.*languages="):
        evaluate(default_encoder, languages=["el", "en"], calibration="center", calibration_source="mlqa-r",
                 verbose=False)
    with pytest.raises(ValueError, match="gives the means of 'center'"):
        evaluate(default_encoder, languages=["en"], calibration="zscore", calibration_source="mlqa-r", verbose=False)


def test_calibration_names_are_checked():
    assert check_calibrations("none, center") == ("none", "center")
    with pytest.raises(ValueError, match="unknown calibration 'centre'; valid: none, center, zscore"):
        check_calibrations("centre")
    with pytest.raises(ValueError, match="repeats"):
        check_calibrations(["center", "center"])
    with pytest.raises(ValueError, match="unknown calibration"):
        calibrate_scores(np.zeros((1, 2)), "median")


def test_language_centering_transformer(tmp_path):
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(6, 4)).astype(np.float32)
    frame = pd.DataFrame({"docno": list("abcdef"), "lang": ["en", "en", "de", "de", "de", "en"],
                          "doc_vec": list(vecs)})
    means = language_means(vecs, frame["lang"])
    assert set(means) == {"en", "de"}
    out = LanguageCentering(means)(frame)
    expected = vecs - np.stack([means[lang] for lang in frame["lang"]])
    np.testing.assert_allclose(np.stack(out["doc_vec"]), expected, atol=1e-6)
    np.testing.assert_allclose(np.stack(LanguageCentering()(frame)["doc_vec"]), expected, atol=1e-6)  # transductive
    path = LanguageCentering(means).save(tmp_path / "means.npz")
    assert sorted(LanguageCentering.load(path).means) == ["de", "en"]
    with pytest.raises(ValueError, match="no language mean for zh; known: de, en"):
        LanguageCentering(means)(frame.assign(lang="zh"))
    with pytest.raises(ValueError, match="needs column.*lang.*'lang' field"):
        LanguageCentering(means)(frame.drop(columns="lang"))


def test_language_score_norm_transformer():
    res = pd.DataFrame({"qid": ["q"] * 4, "docno": ["a", "b", "c", "d"], "lang": ["en", "en", "de", "de"],
                        "score": [3.0, 1.0, 0.5, -0.5], "rank": [0, 1, 2, 3]})
    out = LanguageScoreNorm()(res)
    # each language becomes (+1, -1): the best of each language tie, broken by docno descending
    assert out["docno"].tolist() == ["c", "a", "d", "b"]
    assert out["rank"].tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(out["score"], [1, 1, -1, -1])
    with pytest.raises(ValueError, match="needs column.*lang"):
        LanguageScoreNorm()(res.drop(columns="lang"))


def test_calibration_methods_are_registered_objects():
    from pyterrier_hybrid.calibration import (
        CALIBRATION_METHODS,
        CALIBRATIONS,
        Calibration,
        get_calibration,
        means_needed,
        register_calibration,
    )

    assert CALIBRATIONS == tuple(CALIBRATION_METHODS) == ("none", "center", "zscore", "lsar")
    assert means_needed(CALIBRATIONS) == ["center", "lsar"]
    rng = np.random.default_rng(0)
    scores, queries, mean = rng.normal(size=(3, 5)), rng.normal(size=(3, 4)), rng.normal(size=4)
    np.testing.assert_allclose(get_calibration("center").apply(scores, queries, mean), scores - (queries @ mean)[:, None])
    z = get_calibration("zscore").apply(scores, None, None)
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=1), 1)
    with pytest.raises(ValueError, match="unknown calibration 'lsa'; valid: none, center, zscore, lsar"):
        get_calibration("lsa")
    with pytest.raises(ValueError, match="already registered"):
        register_calibration(Calibration("zscore", False, lambda s, q, m: s))


def test_language_subspace_is_the_span_of_the_centred_means():
    rng = np.random.default_rng(0)
    means = {lang: rng.normal(size=16) for lang in ("ar", "de", "en", "zh")}
    basis = language_subspace(means)
    assert basis.shape == (16, 3)
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(np.eye(16) - basis @ basis.T, _projection(means), atol=1e-12)
    q, d = rng.normal(size=(5, 16)), rng.normal(size=(7, 16))
    proj = _projection(means)
    np.testing.assert_allclose(calibrate_scores(q @ d.T, "lsar", queries=q, docs=d, means=means),
                               (q @ proj) @ (d @ proj).T, atol=1e-12)
    frame = pd.DataFrame({"docno": [str(i) for i in range(7)], "doc_vec": list(d.astype(np.float32))})
    out = LanguageSubspaceRemoval(means)(frame)
    np.testing.assert_allclose(np.stack(out["doc_vec"]), d @ proj, atol=1e-5)
    queries = pd.DataFrame({"qid": ["1"], "query_vec": [q[0].astype(np.float32)]})
    np.testing.assert_allclose(LanguageSubspaceRemoval(means)(queries)["query_vec"][0], q[0] @ proj, atol=1e-5)
    assert language_subspace({"en": rng.normal(size=16)}).shape == (16, 0)  # one language: nothing to remove
    with pytest.raises(ValueError, match="needs the query vectors, the candidate vectors"):
        calibrate_scores(q @ d.T, "lsar", queries=q, means=means)
    with pytest.raises(ValueError, match="needs column doc_vec or query_vec"):
        LanguageSubspaceRemoval(means)(pd.DataFrame({"docno": ["a"]}))
