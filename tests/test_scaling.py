"""Language scaling: the subset rule, seen / unseen grouping, and the pipeline on a tiny model
(plumbing only)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pyterrier_hybrid.experiments.language_scaling import language_subsets, scaling, seen_groups

MLQA = ["ar", "de", "en", "es", "hi", "vi", "zh"]


def test_subsets_are_nested_seeded_and_complete():
    subs = language_subsets(MLQA, [1, 2, 4, 7], draws=2, seed=0)
    assert [(k, d) for k, d, _ in subs] == [(1, 0), (1, 1), (2, 0), (2, 1), (4, 0), (4, 1), (7, 0)]
    by = {(k, d): set(s) for k, d, s in subs}
    for d in (0, 1):
        assert by[(1, d)] < by[(2, d)] < by[(4, d)] < by[(7, 0)] == set(MLQA)  # nested within a draw
    assert by[(1, 0)] != by[(1, 1)] or by[(2, 0)] != by[(2, 1)]  # draws differ
    assert subs == language_subsets(list(reversed(MLQA)), [7, 4, 2, 1], draws=2, seed=0)  # order-free, seeded
    assert subs != language_subsets(MLQA, [1, 2, 4, 7], draws=2, seed=1)
    with pytest.raises(ValueError, match="k must be between 1 and the 7 training languages"):
        language_subsets(MLQA, [0, 8])


def test_seen_groups():
    pq = pd.DataFrame({"query_lang": ["en", "en", "el", "el", "en", "el"],
                       "doc_lang": ["en", "de", "de", "ru", "multi", "multi"]})
    assert list(seen_groups(pq, {"en", "de"})) == ["seen", "seen", "mixed", "unseen", "seen", "unseen"]


def test_scaling_pipeline(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTERRIER_HYBRID_HOME", str(tmp_path / "home"))
    # plumbing (tiny model): the first 200 training examples (a 20-question validation set)
    table = scaling(model=str(tiny_model_dir), ks=(1, 2), languages=["en", "de", "es"], steps=2, batch_size=4,
                    max_examples=200,
                    eval_languages=["de", "en", "el"], limit_queries=4, out=tmp_path, verbose=False)
    runs = json.loads((tmp_path / "scaling.json").read_text())["runs"]
    assert [(r["k"], r["sampling"], len(r["languages"])) for r in runs.values()] == [(1, "x-x-mono", 1), (2, "hybrid", 2)]
    assert set(table.system) == {"base", "k1-d0", "k2-d0"}
    # el is never a training language: its monolingual results are unseen for every model
    k2 = table[(table.system == "k2-d0") & (table.setting == "mono")]
    assert set(k2.group) == {"seen", "unseen", "all", "held-out"}
    assert k2[k2.group.isin(["seen", "unseen"])].n_queries.sum() == 3 * 4
    whole = k2.set_index("group")
    assert whole.loc["all", "n_queries"] == 3 * 4 and min(whole.loc[["seen", "unseen"], "map"]) <= whole.loc[
        "all", "map"] <= max(whole.loc[["seen", "unseen"], "map"])  # the macro over all pairs lies between
    # el is not among the source languages used (en, de, es): held out for every model, as its unseen results
    held = table[table.group == "held-out"]
    assert set(held.system) == {"base", "k1-d0", "k2-d0"} and set(held.setting) == {"mono", "multi"}
    assert (held.n_queries == 4).all()
    by_lang = pd.read_csv(tmp_path / "scaling_by_language.csv")
    mono = by_lang[(by_lang.setting == "mono") & (by_lang.system == "k2-d0")].set_index("query_lang")
    assert sorted(mono.index) == ["de", "el", "en"] and not mono.loc["el", "trained_on_query_lang"]
    k2_held = held[(held.system == "k2-d0") & (held.setting == "mono")]
    assert k2_held["map"].item() == pytest.approx(mono.loc["el", "map"])
    pq = pd.read_parquet(tmp_path / "eval-xquad-r" / "per_query.parquet")
    en = pq[(pq.system == "k2-d0") & (pq.setting == "mono") & (pq.query_lang == "en")]
    assert mono.loc["en", "map"] == pytest.approx(en.AP.mean())
    assert {"map", "R@1", "R@10", "mrr"} <= set(table.columns) and "rank_distance" in table.columns
    # each k against the previous one of its draw, the smallest against the untuned model
    steps = pd.read_csv(tmp_path / "scaling_steps.csv")
    assert [(r.system, r.baseline) for r in steps.itertuples()] == [("k1-d0", "base")] * 3 + [("k2-d0", "k1-d0")] * 3
    row = steps[(steps.system == "k2-d0") & (steps.setting == "mono")].iloc[0]
    a, b = (pq[(pq.system == s) & (pq.setting == "mono")].sort_values(["query_lang", "qid"]).AP.to_numpy()
            for s in ("k2-d0", "k1-d0"))
    assert row.change == pytest.approx((a - b).mean()) and row.n_queries == len(a) == 12
    # the unit of the test is the question: its rows (one per query language) averaged first
    qa, qb = (pq[(pq.system == s) & (pq.setting == "mono")].assign(q=lambda f: f.qid.str.split("_", n=1).str[1])
              .groupby("q").AP.mean().sort_index().to_numpy() for s in ("k2-d0", "k1-d0"))
    assert row.n_units == len(qa) == 4
    assert row.p_value == pytest.approx(stats.ttest_rel(qa, qb).pvalue, nan_ok=True)
    assert row.p_corrected >= row.p_value or np.isnan(row.p_value)
    assert "k2-d0 vs k1-d0" in (tmp_path / "scaling.md").read_text()
    for name in ("scaling.csv", "scaling.md", "scaling.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_cli_scaling_bad_k(capsys):
    from pyterrier_hybrid.cli import main

    assert main(["scaling", "--ks", "0,9", "--out", "/nonexistent/never-written"]) == 2
    assert "k must be between 1 and the 7 training languages" in capsys.readouterr().err


def test_all_languages_model_matches_the_sweeps(monkeypatch, tmp_path):
    """k = all of a LAReQA source's languages trains with languages=None, the sweep's options, so a
    sweep's hybrid run directory is reusable; smaller k pass their subset; given languages stay listed."""
    import pyterrier_hybrid.experiments.language_scaling as sc

    calls = []

    def fake_train(model, source, run_dir, config, **kw):
        calls.append((run_dir.name, config.sampling, config.languages))
        raise StopIteration  # no training, no evaluation: only the options matter here

    monkeypatch.setattr(sc, "train_or_reuse", fake_train)
    for ks in ([7], [2]):
        with pytest.raises(StopIteration):
            scaling(ks=ks, out=tmp_path, verbose=False)
    with pytest.raises(StopIteration):
        scaling(ks=[3], languages=["de", "en", "es"], out=tmp_path, verbose=False)
    assert calls[0] == ("k7-d0", "hybrid", None)
    assert calls[1][0] == "k2-d0" and len(calls[1][2]) == 2 and set(calls[1][2]) <= set(MLQA)
    assert calls[2][:2] == ("k3-d0", "hybrid") and sorted(calls[2][2]) == ["de", "en", "es"]
