"""Question subsets and paragraph pools of the study, and WiSE-FT lambda chosen on a run's validation
questions. The tiny model checks plumbing (equal rows, invariants, the choice rule), not rankings."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from datasets_ext import get_benchmark, load_lang
from pyterrier_hybrid import DenseEncoder, evaluate
from pyterrier_hybrid.experiments.wise import CRITERION, choose_lambda
from pyterrier_hybrid.study import load_languages


@pytest.fixture(scope="module")
def pids(data_dir):
    """40 parallel ids of MLQA-R drawn with a fixed seed."""
    ids = sorted(load_languages("mlqa-r", ["en"])["en"].pids)
    return sorted(np.random.default_rng(0).choice(ids, 40, replace=False).tolist())


def test_question_subsets_and_paragraph_pools(pids):
    full = load_languages("mlqa-r", ["de", "en"])
    sub = load_languages("mlqa-r", ["de", "en"], questions=pids)
    par = load_languages("mlqa-r", ["de", "en"], questions=pids, pool="paragraphs")
    bench = get_benchmark("mlqa-r")
    for lang in ("de", "en"):
        kept = [p for p in full[lang].pids if p in set(pids)]
        assert sub[lang].pids == par[lang].pids == kept and kept
        assert np.array_equal(sub[lang].docnos, full[lang].docnos)  # pool "full": every candidate
        raw = load_lang(bench, lang)
        paragraphs = {raw.docs[full[lang].answer_col[p]].context for p in kept}
        assert list(par[lang].docnos) == [d.doc_id for d in raw.docs if d.context in paragraphs]
        assert len(par[lang].docnos) < len(full[lang].docnos) / 10
        for p in kept:  # the relevant candidate is the same sentence in both pools
            assert par[lang].docnos[par[lang].answer_col[p]] == full[lang].docnos[full[lang].answer_col[p]]
    assert len(sub["en"].qids) == 40 and sub["en"].query_subset == par["en"].query_subset != ""
    with pytest.raises(ValueError, match="unknown pool 'tiny'; valid: full, paragraphs"):
        load_languages("mlqa-r", ["en"], questions=pids, pool="tiny")
    with pytest.raises(ValueError, match="pass questions="):
        load_languages("mlqa-r", ["en"], pool="paragraphs")
    with pytest.raises(ValueError, match=r"none of the 1 questions is in mlqa-r \(en\)"):
        load_languages("mlqa-r", ["en"], questions=["no-such-id"])


def test_subset_rows_equal_the_full_evaluation_and_paragraph_pools_rank_higher(tiny_model_dir, pids):
    enc = DenseEncoder(str(tiny_model_dir), cache=False)
    kw = dict(benchmark="mlqa-r", languages=["de", "es"], verbose=False)
    full = evaluate(enc, **kw).per_query
    sub = evaluate(enc, questions=pids, **kw).per_query
    par = evaluate(enc, questions=pids, pool="paragraphs", **kw)
    assert par.config["pool"] == "paragraphs" and par.config["questions"].startswith("40-")
    key = ["setting", "query_lang", "doc_lang", "qid"]
    merged = sub.merge(full, on=key, suffixes=("", "_full"))
    assert len(merged) == len(sub) > 0 and np.array_equal(merged["AP"], merged["AP_full"])
    both = par.per_query.merge(sub, on=key, suffixes=("", "_full"))
    assert len(both) == len(sub) and (both["AP"] >= both["AP_full"] - 1e-12).all()  # a subset of the same pool
    assert (both["AP"] > both["AP_full"]).any()


def _fake_run(tmp_path, model_dir, pids, source="mlqa-r"):
    run = tmp_path / "train-mlqa-r" / "hybrid-a0.50-seed0"
    shutil.copytree(model_dir, run / "model")
    (run / "train_config.json").write_text(json.dumps({"options": {"source": source},
                                                       "data": {"languages": ["de", "en"], "validation_pids": pids}}))
    return run


def test_choose_lambda_on_validation_questions(tiny_model_dir, pids, tmp_path, monkeypatch):
    import torch

    from pyterrier_hybrid import load_model

    monkeypatch.setenv("PYTERRIER_HYBRID_HOME", str(tmp_path / "home"))
    tuned = load_model(str(tiny_model_dir))
    torch.manual_seed(2)
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(0.05 * torch.randn_like(p))
    tuned.save(str(tmp_path / "tuned"))
    run = _fake_run(tmp_path, tmp_path / "tuned", pids)
    rec = choose_lambda(str(tiny_model_dir), run, lambdas=[1, 0.5], out=tmp_path, verbose=False)
    assert rec["lambdas"] == [0.5, 1.0] and rec["criterion"] == CRITERION and rec["languages"] == ["de", "en"]
    assert rec["n_questions"] == 40 and rec["pool"] == "paragraphs" and rec["benchmark"] == "mlqa-r"
    merged = tmp_path / "merged" / "hybrid-a0.50-seed0-wise0.5"
    assert (merged / "merge.json").is_file()
    # the same numbers from an independent evaluation, and the rule: best mean of the three mAPs
    again = evaluate([str(merged), str(run / "model")], names=["a", "b"], benchmark="mlqa-r", languages=["de", "en"],
                     questions=pids, pool="paragraphs", verbose=False).summary()
    for lam, name in ((0.5, "a"), (1.0, "b")):
        want = again.loc[name, ["mono_map", "cross_map", "multi_map"]].mean()
        assert rec["scores"][f"{lam:g}"]["criterion"] == pytest.approx(want, abs=1e-12)
    best = max((0.5, 1.0), key=lambda lam: (rec["scores"][f"{lam:g}"]["criterion"], -lam))
    assert rec["chosen"] == best
    assert json.loads((tmp_path / "merged" / "hybrid-a0.50-seed0-wise-choice.json").read_text()) == rec
    with pytest.raises(ValueError, match=r"distinct numbers in \(0, 1\]"):
        choose_lambda(str(tiny_model_dir), run, lambdas=[0, 0.5], out=tmp_path)


def test_choose_lambda_refusals(tiny_model_dir, tmp_path):
    run = _fake_run(tmp_path, tiny_model_dir, [])
    with pytest.raises(ValueError, match="held out no validation questions"):
        choose_lambda(str(tiny_model_dir), run, out=tmp_path)
    (run / "train_config.json").write_text(json.dumps({"options": {"source": "data.jsonl"}, "data": {}}))
    with pytest.raises(ValueError, match=r"trained on 'data.jsonl'.*mlqa-r, xquad-r"):
        choose_lambda(str(tiny_model_dir), run, out=tmp_path)
    with pytest.raises(FileNotFoundError, match="holds no training run"):
        choose_lambda(str(tiny_model_dir), tmp_path / "nowhere", out=tmp_path)
