"""Smoke test of the benchmark scripts on tiny inputs (tiny random model: plumbing only)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their shared _common module


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


def test_bench_encoding_smoke(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTERRIER_HYBRID_HOME", str(tmp_path / "home"))
    bench = _load("bench_encoding")
    out = tmp_path / "enc.json"
    bench.main(["--model", str(tiny_model_dir), "--n-queries", "8", "--n-docs", "6", "--batch-sizes", "4,8",
                "--throughput-languages", "de,zh", "--map-languages", "de,zh", "--map-limit-queries", "3",
                "--repeats", "1", "--out", str(out)])
    record = json.loads(out.read_text())
    assert {"date", "machine", "versions", "parameters", "raw_sentence_transformers", "runs", "quality"} <= set(record)
    assert isinstance(record["machine"]["cpu_flags"], list) and record["machine"]["cpu_model"]
    assert record["machine"]["cpu_kind"] in {"amx", "avx512-bf16", "avx512", "avx2", "baseline"}
    assert record["parameters"]["auto_resolves_to"] in {"torch", "torch-bf16", "openvino-bf16"}
    assert record["cpu"]["kind"] == record["machine"]["cpu_kind"]
    backends = ["torch", "torch-bf16", "onnx", "openvino", "openvino-bf16"]
    assert [(r["backend"], r["batch_size"]) for r in record["runs"] if isinstance(r["batch_size"], int)] == [
        (b, s) for b in backends for s in (4, 8)]
    # a backend gets a row at its own default sizes unless those are one of the given sizes (they differ by CPU kind)
    defaults = record["parameters"]["default_batch_sizes"]
    expected = [b for b in backends if defaults[b]["query"] != defaults[b]["document"] or defaults[b]["document"] not in (4, 8)]
    assert [r["backend"] for r in record["runs"] if str(r["batch_size"]).startswith("default ")] == expected
    assert all(r["queries_per_s"] > 0 and r["docs_per_s"] > 0 and r["speedup_mixed"] > 0 for r in record["runs"])
    for r in record["runs"]:  # the probe saw every batch: tokens, FLOPs, time shares
        q = r["queries"]
        assert q["batches"] == (-(-8 // r["batch_size"]) if isinstance(r["batch_size"], int) else 1)  # 8 questions
        assert q["real_tokens"] <= q["padded_tokens"] and q["flops"] > 0 and 0 < q["network_s"] < q["s"]
        assert 0 < r["share_network"] < 1 and 0 < r["share_tokenize"] < 1 and 0 <= r["padding_share"] < 1
        assert 0 < r["fraction_of_peak"] and r["gflops"] > 0
    peak = record["peak"]
    assert peak["fp32_gflops"] == peak["cores"] * peak["clock_ghz"] * peak["fp32"] > 0 and peak["bf16"] >= peak["fp32"]
    prof = record["profile"]
    assert prof["backend"] == record["parameters"]["auto_resolves_to"] and prof["threads"]["one_s"] > 0
    assert abs(prof["tokenize_s"] + prof["network_s"] + prof["other_s"] - prof["total_s"]) < 1e-9
    for k in ("queries", "docs"):
        assert prof["padding"][k]["ideal_padded_tokens"] <= prof["padding"][k]["padded_tokens"]
    assert set(record["quality"]) == set(backends)
    assert record["quality"]["torch"]["max_abs_delta"] == 0
    assert abs(record["quality"]["onnx"]["max_abs_delta"]) < 1e-3  # fp32 in both: same rankings up to rounding
    assert abs(record["quality"]["openvino"]["max_abs_delta"]) < 1e-3


def test_bench_training_smoke(tiny_model_dir, data_dir, tmp_path):
    bench = _load("bench_training")
    out = tmp_path / "train.json"
    bench.main(["--model", str(tiny_model_dir), "--languages", "en,de,es", "--batch-size", "4", "--steps", "4",
                "--max-examples", "300", "--configs", "fp32,bf16-frozen-fused", "--out", str(out)])
    record = json.loads(out.read_text())
    assert record["sampler"]["hybrid_ms_per_batch"] > 0 and record["sampler"]["default_ms_per_batch"] > 0
    steps = record["steps"]
    assert list(steps) == ["fp32", "bf16-frozen-fused"]
    for s in steps.values():
        assert len(s["step_s"]) == 3 and s["mean_step_s"] > 0
        assert set(s["phases_s"]) == {"data", "forward", "backward", "optimizer"}
        assert all(v >= 0 for v in s["phases_s"].values())
        assert sum(s["phases_s"].values()) <= 1.5 * s["mean_step_s"] + 0.05  # the phases partition the step
    assert steps["fp32"]["precision"] == "fp32" and steps["bf16-frozen-fused"]["precision"] == "bf16"
    assert steps["bf16-frozen-fused"]["frozen_parameters"] > 0 == steps["fp32"]["frozen_parameters"]
    assert record["ratios"]["speedup_fp32"] == 1.0


def test_bench_index_smoke(tmp_path):
    bench = _load("bench_index")
    out = tmp_path / "index.json"
    bench.main(["--n", "3000", "--dim", "16", "--queries", "20", "--k", "10",
                "--hnsw", "M=8,ef_construction=40", "--ef-search", "16,64", "--ivf", "n_list=16",
                "--n-probe", "1,16", "--out", str(out)])
    record = json.loads(out.read_text())
    b = record["backends"]
    assert list(b) == ["exact", "hnsw ef_search=16", "hnsw ef_search=64", "ivf n_probe=1", "ivf n_probe=16"]
    assert b["exact"]["recall@10"] == 1.0
    assert b["ivf n_probe=16"]["recall@10"] == 1.0  # probing every list is exhaustive
    assert b["ivf n_probe=1"]["recall@10"] < 1.0
    assert b["hnsw ef_search=16"]["recall@10"] <= b["hnsw ef_search=64"]["recall@10"] <= 1.0
    assert b["hnsw ef_search=64"]["recall@10"] > 0.5
    assert all(b["queries_per_s"] > 0 and b["disk_mb"] > 0 for b in record["backends"].values())


def test_bench_packaged_smoke(tiny_model_dir, data_dir, tmp_path):
    bench = _load("bench_packaged")
    out = tmp_path / "p.json"
    bench.main(["--baseline", str(tiny_model_dir), "--languages", "de,en", "--limit-queries", "5", "--out", str(out)])
    record = json.loads(out.read_text())
    assert {"date", "machine", "versions", "parameters", "times", "numbers", "manifest"} <= set(record)
    assert record["times"]["rebuild_s"] > 0 and record["times"]["evaluate_s"] > 0
    assert set(record["numbers"]) == {f"{s}{c}" for s in ("untuned", "e5-small-hybrid")
                                      for c in ("", "+center", "+zscore")}
    assert all(0 < record["numbers"]["e5-small-hybrid"][m] <= 1 for m in ("mono_map", "cross_map", "multi_map"))
    assert record["manifest"]["delta_sha256"] and record["parameters"]["languages"] == ["de", "en"]


def test_bench_sharded_smoke(tiny_model_dir, data_dir, tmp_path):
    bench = _load("bench_sharded")
    out = tmp_path / "s.json"
    bench.main(["--docs", "8", "--model", str(tiny_model_dir), "--backend", "torch", "--sizes", "3000,1000",
                "--queries", "5", "--k", "10", "--work", str(tmp_path), "--out", str(out)])
    record = json.loads(out.read_text())
    enc = record["encoding"]
    assert enc["docs"] == 8 and enc["mean_tokens"] > 1
    assert enc["1 process"]["threads_per_rank"] == [len(os.sched_getaffinity(0))]
    assert len(enc["2 ranks"]["threads_per_rank"]) == 2 and enc["2 ranks"]["docs_per_second"] > 0
    assert [m["n"] for m in record["merge"]] == [1000, 3000]
    assert all(m["peak_rss_mb"] > 0 and m["index_mb"] > 0 for m in record["merge"])
    assert record["search"]["n"] == 1000 and record["search"]["identical"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]  # scratch removed


def test_bench_flex_smoke(tmp_path):
    bench = _load("bench_flex")
    out = tmp_path / "f.json"
    bench.main(["--n", "600", "--queries", "4", "--k", "50", "--hnsw-n", "400", "--out", str(out)])
    record = json.loads(out.read_text())
    w, r = record["writing"], record["retrieval"]
    assert w["one_document"]["ours"].startswith("ok") and w["failed_input_leaves"]["ours"] is None
    assert w["overwrite_non_index_dir"]["ours_kept_the_file"] is True
    assert r["ours_tied_pairs_in_trec_eval_order"] == 1.0 and r["max_score_difference_by_rank"] < 1e-5
    assert record["hnsw"]["ours"]["max_abs_score_error"] == 0.0 and record["hnsw"]["ours"]["recall@100"] > 0.5


def test_bench_model_load_smoke(default_model_dir, tmp_path):
    bench = _load("bench_model_load")
    out = tmp_path / "l.json"
    bench.main(["--model", str(default_model_dir), "--repeats", "1", "--out", str(out)])
    record = json.loads(out.read_text())
    assert {"date", "machine", "versions", "parameters", "seconds", "median_ratio"} <= set(record)
    assert [len(s) for s in record["seconds"].values()] == [1, 1] and record["median_ratio"] > 0


def test_bench_study_floor_counts_what_the_network_would_compute(tiny_model_dir, data_dir, tmp_path):
    bench = _load("bench_study_floor")
    from pyterrier_hybrid import DenseEncoder
    from pyterrier_hybrid.study_data import load_languages

    langs = load_languages("xquad-r", ["de", "zh"], limit_queries=40)
    enc = DenseEncoder(str(tiny_model_dir), backend="torch", cache=False, verbose=False)
    one = bench.count(enc, langs, "query", 1)
    # batches of one text: no padding, and the real tokens are the tokenizer's own count (prompt included)
    tok, prompt = enc.model.tokenizer, enc.model.prompts["query"]
    expected = sum(len(tok(prompt + q, truncation=True, max_length=enc.model.max_seq_length)["input_ids"])
                   for d in langs.values() for q in d.queries)
    assert one["padded_tokens"] == one["real_tokens"] == expected and one["batches"] == 80
    many = bench.count(enc, langs, "query", 16)
    assert many["real_tokens"] == expected < many["padded_tokens"] and many["batches"] == 2 * 3
    assert many["flops"] > one["flops"]  # padding costs arithmetic
    # sorting by token count pads no more than sentence-transformers' sort by characters
    assert expected <= many["token_sorted_padded_tokens"] <= many["padded_tokens"]
    assert one["token_sorted_padded_tokens"] == expected
    study = tmp_path / "study.json"
    study.write_text(json.dumps({"compare_backends": {"torch": {"study_s": 100.0}, "auto": {"study_s": 40.0}}}))
    out = tmp_path / "floor.json"
    record = bench.main(["--languages", "de,zh", "--model", str(tiny_model_dir), "--study-json", str(study),
                         "--non-network-s", "5", "--targets", "0.25,0.5", "--out", str(out)])
    assert json.loads(out.read_text())["backends"].keys() == {"torch", "auto"}
    for row in record["backends"].values():
        gflops = record["peak"][f"{row['peak_precision']}_gflops"] * 1e9
        assert row["floor_s"] == row["flops"] / gflops and row["floor_unpadded_s"] < row["floor_s"]
        assert abs(row["required_fraction"]["0.25"] - row["flops"] / (0.25 * 100 - 5) / gflops) < 1e-12
        assert row["required_fraction"]["0.5"] < row["required_fraction"]["0.25"]


def test_bench_batching_smoke(tiny_model_dir, data_dir, tmp_path):
    bench = _load("bench_batching")
    out = tmp_path / "b.json"
    record = bench.main(["--backend", "torch", "--languages", "de,zh", "--limit-queries", "30", "--rounds", "1",
                         "--model", str(tiny_model_dir), "--out", str(out)])
    assert json.loads(out.read_text())["texts"] == record["texts"] > 60
    chars, toks = record["orders"].values()
    assert toks["real_tokens"] == chars["real_tokens"] and toks["padded_tokens"] < chars["padded_tokens"]
    assert record["cosine_min"] > 0.99999  # fp32: the same vectors in other batches
    from pyterrier_hybrid import encoders

    assert encoders._batched_by_tokens.__name__ == "_batched_by_tokens"  # restored
