"""StudyResult's tables from per-query rows, and the system names of studies (SystemName)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pyterrier_hybrid.experiments.seeds import configuration, seed_of
from pyterrier_hybrid.results import StudyResult, SystemName

NAMES = ["base", "base+center", "x-y", "x-y/s2", "x-y+wise0.5/s2+center", "hybrid-a0.50+wiseval/s0",
         "hybrid-a0.25+wise0.75", "k2-d0+zscore", "0:model", "my+model", "runs/s1model"]


@pytest.mark.parametrize("text", NAMES)
def test_system_names_round_trip(text):
    assert SystemName.parse(text).format() == str(SystemName.parse(text)) == text


def test_system_name_parts():
    n = SystemName.parse("x-y+wise0.5/s2+center")
    assert (n.run, n.wise, n.seed, n.calibration) == ("x-y", "0.5", 2, "center")
    assert n.configuration == "x-y+wise0.5+center" and n.model == "x-y+wise0.5/s2"
    assert SystemName.parse("my+model") == SystemName("my+model")  # "model" is no calibration method
    assert SystemName.parse("hybrid-a0.50/s1").with_(wise=0.25).format() == "hybrid-a0.50+wise0.25/s1"
    assert SystemName("x-y", seed=3, calibration="zscore").format() == "x-y/s3+zscore"
    assert (configuration("x-y+wise0.5/s2+center"), seed_of("x-y+wise0.5/s2+center")) == ("x-y+wise0.5+center", 2)
    assert (configuration("base+center"), seed_of("base+center")) == ("base+center", None)


def _result() -> StudyResult:
    """Two systems, two languages, two questions per pair, known values."""
    rows = []
    for system, ap in (("base", 0.5), ("tuned", 0.75)):
        for q in ("en", "de"):
            for d, setting in ((q, "mono"), ("de" if q == "en" else "en", "cross"), ("multi", "multi")):
                for i, delta in enumerate((-0.25, 0.25)):
                    rows.append({"system": system, "setting": setting, "query_lang": q, "doc_lang": d,
                                 "qid": f"{q}_{i}", "AP": ap + delta + (0.1 if q == "de" else 0.0),
                                 "R@1": float(i), "RankDistance": 10.0 * (i + 1) if setting == "multi" else np.nan})
    return StudyResult("xquad-r", ("en", "de"), ("mono", "cross", "multi"), pd.DataFrame(rows), ["base", "tuned"])


def test_tables_are_macro_averages_over_pairs():
    r = _result()
    assert r.measures == ["AP", "R@1", "RankDistance"]
    pairs = r.pairs()
    assert len(pairs) == 2 * 3 * 2 and set(pairs.n_queries) == {2}
    s = r.summary()
    assert list(s.index) == ["base", "tuned"]
    assert s.loc["base", "mono_map"] == pytest.approx(0.55) and s.loc["tuned", "cross_map"] == pytest.approx(0.8)
    assert s.loc["tuned", "rank_distance"] == pytest.approx(15.0)
    by_lang = r.by_language()
    assert list(by_lang.columns) == ["mono", "cross", "multi"]
    assert by_lang.loc[("base", "de"), "mono"] == pytest.approx(0.6)
    assert list(r.rank_distance().columns) == ["base", "tuned"]


def test_save_moved_to_write_outputs():
    with pytest.raises(AttributeError, match="write_outputs"):
        _result().save("out")


def test_summary_is_computed_once_per_state(monkeypatch):
    r = _result()
    calls = []
    original = StudyResult._summary
    monkeypatch.setattr(StudyResult, "_summary", lambda self: calls.append(1) or original(self))
    first = r.summary()
    first.loc["base", "mono_map"] = -1.0  # callers get a copy
    assert r.summary().loc["base", "mono_map"] == pytest.approx(0.55) and len(calls) == 1
    r.per_query = r.per_query[r.per_query.system == "base"]
    r.systems = ["base"]
    assert list(r.summary().index) == ["base"] and len(calls) == 2
