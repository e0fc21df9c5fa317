"""Encoding throughput per backend vs raw sentence-transformers fp32, and each backend's mAP delta.

In one run:

a. **raw**: ``SentenceTransformer.encode_query`` / ``encode_document`` of the same model with
   sentence-transformers' defaults (fp32, batch 32), timed before and after the backends (their
   mean is the baseline, their spread is reported as drift);
b. every backend x batch size through ``DenseEncoder.encode_queries`` / ``encode_docs``
   (questions and candidates timed separately, after a warm-up batch);
c. each backend at its default batch size runs the language-pair study (mono / cross / multi
   mAP) on an XQuAD-R subset; deltas are against ``torch`` fp32.

Run: ``LAREQA_DATA_DIR=/work/shared/data python benchmarks/bench_encoding.py``. Prints a table
and writes JSON (``benchmarks/results/encoding.json`` by default).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from _common import RESULTS, finish, machine, now, table, timed, versions


def _texts(benchmark: str, languages: list[str], n_queries: int, n_docs: int) -> tuple[list[str], list[str]]:
    """Round-robin over the languages: the first questions and candidates of each."""
    from datasets_ext import get_benchmark, load_lang

    bench = get_benchmark(benchmark)
    raws = [load_lang(bench, lang) for lang in languages]
    per_q, per_d = -(-n_queries // len(raws)), -(-n_docs // len(raws))
    queries = [q.text for r in raws for q in r.queries[:per_q]][:n_queries]
    docs = [d.text for r in raws for d in r.docs[:per_d]][:n_docs]
    return queries, docs


def _throughput(encode_q: Any, encode_d: Any, queries: list[str], docs: list[str]) -> dict[str, float]:
    encode_q(queries[:8])
    encode_d(docs[:8])
    _, tq = timed(lambda: encode_q(queries))
    _, td = timed(lambda: encode_d(docs))
    return {"queries_per_s": len(queries) / tq, "docs_per_s": len(docs) / td, "queries_s": tq, "docs_s": td}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON record (also written to ``--out``)."""
    from pyterrier_hybrid.backends import BACKENDS, DEFAULT_BACKEND, default_batch_size, resolve_backend

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model spec or directory (default: the offline default)")
    concrete = [b for b in BACKENDS if b != "auto"]
    p.add_argument("--backends", default=",".join(concrete), help="comma-separated subset of " + ", ".join(BACKENDS)
                   + " ('auto' is reported as the backend it resolves to on this CPU)")
    p.add_argument("--batch-sizes", default="8,16,32,64", help="batch sizes timed per backend")
    p.add_argument("--throughput-languages", default="ar,de,en,zh")
    p.add_argument("--n-queries", type=int, default=600, help="questions timed (round-robin over the languages)")
    p.add_argument("--n-docs", type=int, default=300, help="candidates timed")
    p.add_argument("--map-languages", default="de,en,zh", help="XQuAD-R languages of the mAP check ('' to skip)")
    p.add_argument("--map-limit-queries", type=int, default=300, help="questions per language in the mAP check")
    p.add_argument("--out", type=Path, default=RESULTS / "encoding.json")
    args = p.parse_args(argv)
    auto = resolve_backend("auto")
    backends = list(dict.fromkeys(auto if b.strip() == "auto" else b.strip() for b in args.backends.split(",") if b.strip()))
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    load_before = os.getloadavg()

    import torch

    from pyterrier_hybrid import DenseEncoder, VectorCache, evaluate, load_model

    queries, docs = _texts("xquad-r", args.throughput_languages.split(","), args.n_queries, args.n_docs)
    print(f"timing {len(queries)} questions and {len(docs)} candidates "
          f"({args.throughput_languages}), torch threads {torch.get_num_threads()}; 'auto' is {auto} on this CPU",
          flush=True)

    raw_model = load_model(args.model)

    def raw() -> dict[str, float]:
        with torch.inference_mode():
            return _throughput(lambda t: raw_model.encode_query(t, normalize_embeddings=True),
                               lambda t: raw_model.encode_document(t, normalize_embeddings=True), queries, docs)

    raw_before = raw()
    print(f"raw sentence-transformers fp32: {raw_before['queries_per_s']:.1f} q/s, "
          f"{raw_before['docs_per_s']:.1f} d/s", flush=True)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-enc-") as tmp:
        encoders = {}
        for backend in backends:
            enc, setup_s = timed(lambda b=backend: DenseEncoder(args.model, backend=b, cache=VectorCache(Path(tmp) / b)))
            encoders[backend] = enc
            for bs in [*batch_sizes, None]:  # None: the backend's defaults for questions and candidates
                r = _throughput(lambda t, e=enc, b=bs: e.encode_queries(t, b),
                                lambda t, e=enc, b=bs: e.encode_docs(t, b), queries, docs)
                bs = bs or f"default {enc.query_batch_size},{enc.batch_size}"
                runs.append({"backend": backend, "batch_size": bs, "setup_s": setup_s, **r})
                print(f"  {backend:<10} bs {bs:>3}: {r['queries_per_s']:7.1f} q/s {r['docs_per_s']:7.1f} d/s",
                      flush=True)
        raw_after = raw()
        base_q = (raw_before["queries_per_s"] + raw_after["queries_per_s"]) / 2
        base_d = (raw_before["docs_per_s"] + raw_after["docs_per_s"]) / 2
        for r in runs:
            r["speedup_queries"] = r["queries_per_s"] / base_q
            r["speedup_docs"] = r["docs_per_s"] / base_d
            # the study encodes as many questions as candidates: harmonic mix of the two rates
            r["speedup_mixed"] = (1 / base_q + 1 / base_d) / (1 / r["queries_per_s"] + 1 / r["docs_per_s"])

        quality: dict[str, dict[str, float]] = {}
        map_langs = [x for x in args.map_languages.split(",") if x]
        for backend, enc in encoders.items() if map_langs else []:
            enc.batch_size, enc.query_batch_size = default_batch_size(backend), default_batch_size(backend, "query")
            res, secs = timed(lambda e=enc: evaluate(e, benchmark="xquad-r", languages=map_langs,
                                                     limit_queries=args.map_limit_queries, verbose=False))
            s = res.summary().iloc[0]
            quality[backend] = {"mono_map": float(s["mono_map"]), "cross_map": float(s["cross_map"]),
                                "multi_map": float(s["multi_map"]), "study_s": secs}
            print(f"  mAP {backend:<10}: mono {s['mono_map']:.4f} cross {s['cross_map']:.4f} "
                  f"multi {s['multi_map']:.4f} ({secs:.0f}s)", flush=True)
    ref = quality.get("torch")
    for q in quality.values():
        if ref:
            for k in ("mono_map", "cross_map", "multi_map"):
                q[f"delta_{k}"] = q[k] - ref[k]
            q["max_abs_delta"] = max(abs(q[f"delta_{k}"]) for k in ("mono_map", "cross_map", "multi_map"))

    best = {}
    for backend in backends:
        mine = [r for r in runs if r["backend"] == backend]
        best[backend] = max(mine, key=lambda r: r["speedup_mixed"])
    record = {
        "date": now(),
        "machine": machine(load_before),
        "versions": versions(),
        "parameters": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                       "n_queries": len(queries), "n_docs": len(docs), "torch_threads": torch.get_num_threads(),
                       "default_backend": DEFAULT_BACKEND, "auto_resolves_to": auto,
                       "default_batch_sizes": {b: {k: default_batch_size(b, k) for k in ("query", "document")}
                                               for b in backends}},
        "raw_sentence_transformers": {"before": raw_before, "after": raw_after,
                                      "queries_per_s": base_q, "docs_per_s": base_d},
        "runs": runs,
        "best_batch_size": {b: r["batch_size"] for b, r in best.items()},
        "quality": quality,
        "target": {"speedup_min": 2.5, "max_abs_delta_map": 0.005},
    }
    rows = [["raw ST fp32 (bs 32)", "-", f"{base_q:.1f}", f"{base_d:.1f}", "1.00", "1.00", "1.00", "0 (ref.)"]]
    for r in runs:
        q = quality.get(r["backend"], {})
        delta = f"{q['max_abs_delta']:.4f}" if "max_abs_delta" in q and str(r["batch_size"]).startswith("default") else ""
        rows.append([r["backend"], r["batch_size"], f"{r['queries_per_s']:.1f}", f"{r['docs_per_s']:.1f}",
                     f"{r['speedup_queries']:.2f}", f"{r['speedup_docs']:.2f}", f"{r['speedup_mixed']:.2f}", delta])
    drift = raw_after["docs_per_s"] / raw_before["docs_per_s"]
    text = table(["backend", "batch", "q/s", "d/s", "x q", "x d", "x mixed", "max |dmAP|"], rows)
    return finish(record, args.out, text + f"\nraw ST drift (after / before, candidates): {drift:.2f}")

if __name__ == "__main__":
    main()
