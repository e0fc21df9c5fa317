"""Smoke test of the benchmark scripts on tiny inputs (tiny random model: plumbing only)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_bench_study_smoke(tiny_model_dir, data_dir, tmp_path):
    bench = _load("bench_study")
    out = tmp_path / "x.json"
    bench.main(["--benchmark", "xquad-r", "--languages", "de,en", "--limit-queries", "5",
                "--pairs-for-baseline", "1", "--multi-queries", "5", "--model", str(tiny_model_dir),
                "--out", str(out)])
    record = json.loads(out.read_text())
    assert {"date", "machine", "versions", "parameters", "times", "ratios", "baseline", "study_summary"} <= set(record)
    assert record["machine"]["cores"] >= 1 and len(record["machine"]["loadavg_before"]) == 3
    assert {"torch", "sentence-transformers", "numpy"} <= set(record["versions"])
    assert record["parameters"]["languages"] == ["de", "en"]
    times = record["times"]
    for key in ("encode_only_s", "study_s", "study_scoring_measuring_s", "per_pair_experiment_s"):
        assert times[key] > 0, key
    assert record["ratios"]["study_over_encode_only"] > 0
    assert record["baseline"]["n_pair_settings"] == 4 and record["baseline"]["n_multi_settings"] == 2
    assert len(record["baseline"]["timed_pairs"]) == 1 and record["baseline"]["timed_multi"]["n_queries"] == 5
    assert "extrapolation" in record["baseline"]
    assert {"mono_map", "cross_map", "multi_map", "rank_distance"} <= set(record["study_summary"])
