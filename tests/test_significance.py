"""Paired tests of systems against a baseline: question as the unit per setting, Holm correction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pyterrier_hybrid.results import StudyResult
from pyterrier_hybrid.significance import correct, question_of


def _result() -> StudyResult:
    rng = np.random.default_rng(0)
    rows = []
    for system, shift in (("base", 0.0), ("better", 0.1), ("same", 0.0)):
        for q in ("en", "de"):
            for d, setting in ((q, "mono"), ("multi", "multi")):
                for i in range(30):
                    rows.append({"system": system, "setting": setting, "query_lang": q, "doc_lang": d,
                                 "qid": f"{q}_{i}", "AP": float(np.clip(0.5 + shift + rng.normal(0, 0.1), 0, 1))})
    return StudyResult("xquad-r", ("en", "de"), ("mono", "multi"), pd.DataFrame(rows), ["base", "better", "same"])


def test_question_of():
    assert list(question_of(pd.Series(["en_56be", "de_56be", "zh_a_b"]))) == ["56be", "56be", "a_b"]


def test_setting_level_averages_each_questions_pairs_first():
    r = _result()
    sig = r.significance(baseline=0)
    row = sig[(sig.system == "better") & (sig.level == "setting") & (sig.setting == "mono")].iloc[0]
    pq = r.per_query[r.per_query.setting == "mono"]
    per_q = {s: pq[pq.system == s].groupby(question_of(pq[pq.system == s].qid).to_numpy())["AP"].mean()
             for s in ("base", "better")}
    assert row["n_units"] == 30 and row["n_queries"] == 60
    assert row["p_value"] == pytest.approx(stats.ttest_rel(per_q["better"], per_q["base"])[1])
    assert row["reject"] and row["+"] > row["-"]
    pair = sig[(sig.system == "better") & (sig.level == "pair")]
    assert set(zip(pair.setting, pair.query_lang, strict=True)) == {("mono", "en"), ("mono", "de"), ("multi", "en"),
                                                                    ("multi", "de")}
    with pytest.raises(ValueError, match="baseline must index"):
        r.significance(baseline=3)


def test_holm_correction_within_families():
    df = pd.DataFrame({"family": ["a", "a", "b"], "p_value": [0.01, 0.04, 0.04]})
    out = correct(df.copy(), ["family"], "holm")
    assert list(out.p_corrected) == pytest.approx([0.02, 0.04, 0.04]) and list(out.reject) == [True, True, True]
    assert list(correct(df.copy(), ["family"], None, alpha=0.02).reject) == [True, False, False]
