"""A study's output files: results.json, per_query.parquet, pairs.csv, significance, report and figures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pyterrier_hybrid.report import clean_json, summary_table, write_outputs
from pyterrier_hybrid.results import StudyResult


def _result() -> StudyResult:
    rng = np.random.default_rng(1)
    rows = [{"system": system, "setting": setting, "query_lang": q, "doc_lang": d, "qid": f"{q}_{i}",
             "AP": float(np.clip(0.5 + shift + rng.normal(0, 0.1), 0, 1)),
             "RankDistance": float(rng.integers(1, 50)) if setting == "multi" else np.nan}
            for system, shift in (("base", 0.0), ("better", 0.1), ("same", 0.0)) for q in ("en", "de")
            for d, setting in ((q, "mono"), ("de" if q == "en" else "en", "cross"), ("multi", "multi"))
            for i in range(20)]
    return StudyResult("xquad-r", ("en", "de"), ("mono", "cross", "multi"), pd.DataFrame(rows),
                       ["base", "better", "same"])


def test_write_outputs(tmp_path):
    r = _result()
    (tmp_path / "heatmap_7.png").write_bytes(b"stale")
    out = write_outputs(r, tmp_path)
    assert out == tmp_path and not (tmp_path / "heatmap_7.png").exists()
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [s["name"] for s in doc["systems"]] == r.systems and doc["summary"] == doc["systems"][0]["summary"]
    assert doc["systems"][1]["summary"]["mono_map"] == pytest.approx(r.summary().loc["better", "mono_map"])
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "per_query.parquet"), r.per_query)
    assert len(pd.read_csv(tmp_path / "pairs.csv")) == len(r.pairs())
    assert set(pd.read_csv(tmp_path / "significance.csv").system) == {"better", "same"}
    assert {f"heatmap_{i}.png" for i in range(3)} | {"rank_distance.png"} <= {p.name for p in tmp_path.iterdir()}
    assert "better" in (tmp_path / "report.md").read_text()


def test_summary_table_and_clean_json():
    t = summary_table(_result())
    assert list(t.index) == ["base", "better", "same"] and "Mo." in t.columns
    assert clean_json({"a": float("nan"), "b": [1.5]}) == {"a": None, "b": [1.5]}
