"""How fast is the language-pair study? Encoding floor vs ``evaluate`` vs per-pair ``pt.Experiment``.

In one run, with a fresh temporary vector cache (nothing pre-cached), it times:

a. ``encode_only``: every selected language's questions and candidates encoded once (the floor);
b. ``study``: ``pyterrier_hybrid.evaluate`` over all settings (cold cache: encoding + scoring), then
   a second call on the now-warm cache (``study_warm``: cache reads + scoring + measuring);
c. ``per_pair_experiment``: the obvious alternative, ``pt.Experiment`` over per-pair pipelines
   ``encoder.query_encoder() >> per_language_index.retriever()`` (full rankings), timed on a few
   pairs and one multilingual setting, then extrapolated linearly to every setting.

Run: ``LAREQA_DATA_DIR=/work/shared/data python benchmarks/bench_study.py --benchmark xquad-r``.
Prints a table and writes JSON (``benchmarks/results/study_<benchmark>.json`` by default).
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO, machine, now, timed, versions, write_json

EXTRAPOLATION = (
    "per_pair_experiment = index_build + encode_docs_once + mean(timed pair seconds) * n_languages**2"
    " + (multi seconds / timed multi queries) * total multi queries"
)
EVAL_METRICS = ["AP", "R@1", "R@10", "nDCG@10", "RR"]


def _pick_pairs(langs: list[str], n: int) -> list[tuple[str, str]]:
    """``n`` (query, doc) pairs spread evenly over all ordered pairs (mono and cross mixed)."""
    pairs = list(itertools.product(langs, langs))
    n = max(0, min(n, len(pairs)))
    return [pairs[i] for i in np.unique(np.linspace(0, len(pairs) - 1, n).round().astype(int))] if n else []


def _experiment(pipe: Any, topics: Any, qrels: Any) -> Any:
    import pyterrier as pt
    from ir_measures import parse_measure

    return pt.Experiment([pipe], topics, qrels, eval_metrics=[parse_measure(m) for m in EVAL_METRICS])


def _baseline(encoder: Any, benchmark: str, langs: dict, dvecs: dict[str, np.ndarray], tmp: Path,
              n_pairs: int, multi_queries: int) -> dict[str, Any]:
    """Per-pair ``pt.Experiment`` timings and their linear extrapolation to every setting."""
    import pyterrier as pt

    from pyterrier_hybrid import DenseIndex

    names = list(langs)

    def build() -> dict[str, DenseIndex]:
        out = {d: DenseIndex.build(tmp / "idx" / d, langs[d].docnos, dvecs[d]) for d in names}
        out["multi"] = DenseIndex.build(tmp / "idx" / "multi", np.concatenate([langs[d].docnos for d in names]),
                                        np.concatenate([dvecs[d] for d in names]))
        return out

    indexes, build_s = timed(build)

    def run(q: str, d: str, limit: int | None = None) -> tuple[float, int, dict]:
        ds = pt.get_dataset(f"irds:{benchmark}/{q}-{d}")
        keep = set(langs[q].qids[:limit] if limit else langs[q].qids)
        topics = ds.get_topics()
        topics = topics[topics.qid.isin(keep)]
        qrels = ds.get_qrels()
        qrels = qrels[qrels.qid.isin(keep) & qrels.docno.isin(set(indexes[d].docnos()))]
        pipe = encoder.query_encoder(verbose=False) >> indexes[d].retriever(num_results=None)
        res, secs = timed(lambda: _experiment(pipe, topics, qrels))
        return secs, len(topics), {m: float(res.loc[0, m]) for m in EVAL_METRICS}

    pairs = []
    for q, d in _pick_pairs(names, n_pairs):
        secs, nq, vals = run(q, d)
        pairs.append({"query_lang": q, "doc_lang": d, "seconds": secs, "n_queries": nq, **vals})
        print(f"  pt.Experiment {q}-{d}: {secs:.2f}s ({nq} queries)", flush=True)
    q0 = names[0]
    limit = min(multi_queries, len(langs[q0].qids))
    msecs, mq, mvals = run(q0, "multi", limit)
    print(f"  pt.Experiment {q0}-multi: {msecs:.2f}s ({mq} queries)", flush=True)
    total_multi_queries = sum(len(langs[q].qids) for q in names)
    pair_mean = float(np.mean([p["seconds"] for p in pairs])) if pairs else float("nan")
    extrapolated_pairs = pair_mean * len(names) ** 2
    extrapolated_multi = msecs / mq * total_multi_queries
    return {
        "index_build_s": build_s,
        "timed_pairs": pairs,
        "timed_multi": {"query_lang": q0, "seconds": msecs, "n_queries": mq, **mvals},
        "pair_mean_s": pair_mean,
        "n_pair_settings": len(names) ** 2,
        "n_multi_settings": len(names),
        "total_multi_queries": total_multi_queries,
        "extrapolated_pairs_s": extrapolated_pairs,
        "extrapolated_multi_s": extrapolated_multi,
        "experiments_s": extrapolated_pairs + extrapolated_multi,
    }


def _table(rows: list[tuple[str, float, str]]) -> str:
    lines = [f"{'phase':<42} {'seconds':>10}  note", "-" * 90]
    lines += [f"{name:<42} {secs:>10.2f}  {note}" for name, secs, note in rows]
    return "\n".join(lines)


def _compare_backends(args: argparse.Namespace, names: list[str], progress: Any = None) -> dict[str, Any]:
    """The whole study (cold cache: encoding, scoring, measuring) once per backend; ``progress(runs)``
    after each (so a long comparison cut short keeps what it measured)."""
    from pyterrier_hybrid import DenseEncoder, VectorCache, evaluate

    runs: dict[str, Any] = {}
    for requested in [b.strip() for b in args.compare_backends.split(",") if b.strip()]:
        with tempfile.TemporaryDirectory(prefix="bench-study-cmp-") as tmpdir:
            enc = DenseEncoder(args.model, backend=requested, batch_size=args.batch_size,
                               cache=VectorCache(Path(tmpdir) / "vectors"))
            c0 = time.process_time()
            res, secs = timed(lambda e=enc: evaluate(e, benchmark=args.benchmark, languages=names,
                                                     limit_queries=args.limit_queries, verbose=False))
            summary = {k: float(v) for k, v in res.summary().iloc[0].items()}
            runs[requested] = {"backend": enc.backend, "batch_size": enc.batch_size, "study_s": secs,
                               "study_cpu_s": time.process_time() - c0, "summary": summary}
            print(f"  study with backend {requested} ({enc.backend}, batch {enc.batch_size}): {secs:.1f}s; "
                  f"mono {summary['mono_map']:.4f} cross {summary['cross_map']:.4f} multi {summary['multi_map']:.4f}",
                  flush=True)
        _ratios(runs)
        if progress is not None:
            progress(runs)
    return runs


def _ratios(runs: dict[str, Any]) -> None:
    """Wall time, process CPU time and mAP of every run against the first."""
    first = next(iter(runs.values()))
    for r in runs.values():
        r["wall_ratio"] = r["study_s"] / first["study_s"]
        r["cpu_ratio"] = r["study_cpu_s"] / first["study_cpu_s"]
        r["delta"] = {k: r["summary"][k] - first["summary"][k] for k in ("mono_map", "cross_map", "multi_map")}


def _compare_table(compare: dict[str, Any]) -> str:
    lines = [f"{'backend':<28} {'batch':>5} {'study s':>9} {'x first':>8} {'CPU x':>6}  mono / cross / multi mAP "
             "(delta)", "-" * 110]
    for name, r in compare.items():
        s, d = r["summary"], r["delta"]
        lines.append(f"{name + ' (' + r['backend'] + ')':<28} {r['batch_size']:>5} {r['study_s']:>9.1f} "
                     f"{r['wall_ratio']:>8.3f} {r['cpu_ratio']:>6.3f}  " + " / ".join(f"{s[k]:.4f} ({d[k]:+.4f})"
                                                          for k in ("mono_map", "cross_map", "multi_map")))
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--benchmark", default="xquad-r", choices=["xquad-r", "mlqa-r"])
    p.add_argument("--languages", default=None, help="comma-separated (default: all of the benchmark)")
    p.add_argument("--limit-queries", type=int, default=None, help="first N questions per language")
    p.add_argument("--pairs-for-baseline", type=int, default=4, help="language pairs timed with pt.Experiment")
    p.add_argument("--multi-queries", type=int, default=200,
                   help="queries of the one timed multi setting (full rankings of the pool are large)")
    p.add_argument("--batch-size", type=int, default=None, help="encoding batch size (default: the backend's)")
    p.add_argument("--backend", default=None, help="encoding backend of the floor/study/baseline (default: auto)")
    p.add_argument("--compare-backends", default=None,
                   help="e.g. torch,auto: the whole study per backend, each on a cold cache; wall-time ratios and "
                        "mAP deltas against the first")
    p.add_argument("--compare-only", action="store_true", help="run only --compare-backends (no floor, no baseline)")
    p.add_argument("--model", default=None, help="model spec or directory (default: the offline default)")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/study_<benchmark>.json)")
    args = p.parse_args(argv)
    if args.compare_only and not args.compare_backends:
        p.error("--compare-only needs --compare-backends")
    return args


def _languages(args: argparse.Namespace) -> tuple[dict[str, Any], int, int]:
    """The benchmark's selected languages, with their numbers of questions and candidates (printed)."""
    from pyterrier_hybrid.study import load_languages

    languages = [s.strip() for s in args.languages.split(",") if s.strip()] if args.languages else None
    langs = load_languages(args.benchmark, languages, limit_queries=args.limit_queries)
    n_queries = sum(len(d.qids) for d in langs.values())
    n_docs = sum(len(d.docnos) for d in langs.values())
    print(f"{args.benchmark}: {len(langs)} languages, {n_queries} questions, {n_docs} candidates", flush=True)
    return langs, n_queries, n_docs


def _encode_floor(encoder: Any, langs: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """a. the floor: every text encoded once, no cache involved; the candidate vectors and the times."""
    t0, c0 = time.perf_counter(), time.process_time()
    dvecs: dict[str, np.ndarray] = {}
    encode_queries_s = encode_docs_s = 0.0
    for lang, data in langs.items():
        _, s = timed(lambda data=data: encoder.encode_queries(data.queries))
        encode_queries_s += s
        texts = [encoder.doc_text({"text": t, "context": c}) for t, c in zip(data.docs, data.contexts, strict=True)]
        dvecs[lang], s = timed(lambda texts=texts: encoder.encode_docs(texts))
        encode_docs_s += s
        print(f"  encoded {lang}", flush=True)
    times = {"encode_only_s": time.perf_counter() - t0, "encode_only_queries_s": encode_queries_s,
             "encode_only_docs_s": encode_docs_s, "encode_only_cpu_s": time.process_time() - c0}
    print(f"encode_only: {times['encode_only_s']:.1f}s", flush=True)
    return dvecs, times


def _study(encoder: Any, args: argparse.Namespace, names: list[str]) -> tuple[Any, dict[str, float]]:
    """b. the study, cold cache then warm cache: its result and times."""
    from pyterrier_hybrid import evaluate

    kw = {"benchmark": args.benchmark, "languages": names, "limit_queries": args.limit_queries, "verbose": False}
    c0 = time.process_time()
    result, study_s = timed(lambda: evaluate(encoder, **kw))
    study_cpu_s = time.process_time() - c0
    print(f"study (cold cache): {study_s:.1f}s", flush=True)
    _, warm_s = timed(lambda: evaluate(encoder, **kw))
    print(f"study (warm cache): {warm_s:.1f}s", flush=True)
    return result, {"study_s": study_s, "study_cpu_s": study_cpu_s, "warm_s": warm_s}


def _print_report(record: dict[str, Any], load_before: tuple[float, float, float], out: Path) -> None:
    times, ratios, base = record["times"], record["ratios"], record["baseline"]
    rows = [
        ("encode_only (queries + candidates once)", times["encode_only_s"], "the floor"),
        ("study, cold cache (evaluate)", times["study_s"], f"{ratios['study_over_encode_only']:.3f} x encode_only"),
        ("study / encode_only in process CPU time", times["study_cpu_s"],
         f"{ratios['study_over_encode_only_cpu']:.3f} (CPU {times['encode_only_cpu_s']:.0f}s vs "
         f"{times['study_cpu_s']:.0f}s)"),
        ("  of which encoding (cold - warm)", times["study_encoding_s"], ""),
        ("  of which scoring+measuring (warm run)", times["study_scoring_measuring_s"], "includes cache reads"),
        ("per-pair pt.Experiment (extrapolated)", times["per_pair_experiment_s"],
         f"{ratios['per_pair_experiment_over_study']:.2f} x study"),
        ("  index build + docs encoded once", base["index_build_s"] + times["encode_only_docs_s"], ""),
        (f"  {base['n_pair_settings']} pairs: mean {base['pair_mean_s']:.2f}s x n", base["extrapolated_pairs_s"],
         f"timed {len(base['timed_pairs'])} pairs"),
        (f"  {base['n_multi_settings']} multi: per-query x {base['total_multi_queries']}",
         base["extrapolated_multi_s"], f"timed {base['timed_multi']['n_queries']} queries"),
    ]
    print()
    print(_table(rows))
    print(f"extrapolation: {EXTRAPOLATION}")
    print(f"machine: {record['machine']['cores']} cores, {record['machine']['cpu_model']}, "
          f"load {load_before[0]:.2f} -> {record['machine']['loadavg_after'][0]:.2f}")
    print(f"summary: {record['study_summary']}")
    if record.get("compare_backends"):
        print(_compare_table(record["compare_backends"]))
    print(f"wrote {out}")


def _times(floor: dict[str, float], study: dict[str, float], load_s: float, fingerprint_s: float,
           per_pair_s: float) -> tuple[dict[str, float], dict[str, float]]:
    """The record's times and ratios."""
    study_s, warm_s = study["study_s"], study["warm_s"]
    times = {
        "model_load_s": load_s,
        "fingerprint_s": fingerprint_s,
        "encode_only_s": floor["encode_only_s"],
        "encode_only_queries_s": floor["encode_only_queries_s"],
        "encode_only_docs_s": floor["encode_only_docs_s"],
        "study_s": study_s,
        "encode_only_cpu_s": floor["encode_only_cpu_s"],
        "study_cpu_s": study["study_cpu_s"],
        "study_encoding_s": max(study_s - warm_s, 0.0),
        "study_scoring_measuring_s": warm_s,
        "per_pair_experiment_s": per_pair_s,
    }
    ratios = {
        "study_over_encode_only": study_s / floor["encode_only_s"],
        # CPU time of this process: robust to other load on a shared machine
        "study_over_encode_only_cpu": study["study_cpu_s"] / floor["encode_only_cpu_s"],
        "per_pair_experiment_over_study": per_pair_s / study_s,
    }
    return times, ratios


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON record (also written to ``--out``)."""
    args = _parse(argv)
    out = args.out or REPO / "benchmarks" / "results" / f"study_{args.benchmark}.json"

    from pyterrier_hybrid import DenseEncoder, VectorCache
    from pyterrier_hybrid.cpu import cpu_record

    load_before = os.getloadavg()
    langs, n_queries, n_docs = _languages(args)
    names = list(langs)

    def compare_record(runs: dict[str, Any]) -> dict[str, Any]:
        return {"date": now(), "machine": machine(load_before), "cpu": cpu_record(), "versions": versions(),
                "parameters": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                               "languages": names, "n_queries": n_queries, "n_docs": n_docs},
                "compare_backends": runs}

    progress = (lambda runs: write_json(Path(out), compare_record(runs))) if args.compare_only else None
    compare = _compare_backends(args, names, progress) if args.compare_backends else None
    if args.compare_only:
        record = compare_record(compare)
        write_json(Path(out), record)
        print(_compare_table(compare))
        print(f"wrote {out}")
        return record

    with tempfile.TemporaryDirectory(prefix="bench-study-") as tmpdir:
        tmp = Path(tmpdir)
        encoder, load_s = timed(lambda: DenseEncoder(args.model, backend=args.backend, batch_size=args.batch_size,
                                                      cache=VectorCache(tmp / "vectors")))
        _, fingerprint_s = timed(lambda: encoder.fingerprint)
        dvecs, floor = _encode_floor(encoder, langs)
        result, study = _study(encoder, args, names)
        # c. per-pair pt.Experiment, extrapolated
        base = _baseline(encoder, args.benchmark, langs, dvecs, tmp, args.pairs_for_baseline, args.multi_queries)

    per_pair_s = base["index_build_s"] + floor["encode_only_docs_s"] + base["experiments_s"]
    times, ratios = _times(floor, study, load_s, fingerprint_s, per_pair_s)
    record = {
        "date": now(),
        "machine": machine(load_before),
        "versions": versions(),
        "parameters": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                       "languages": names, "model_name": encoder.model_name, "n_queries": n_queries,
                       "n_docs": n_docs, "eval_metrics": EVAL_METRICS},
        "times": times,
        "ratios": ratios,
        "target": {"study_over_encode_only_max": 1.10, "met": ratios["study_over_encode_only"] <= 1.10},
        "baseline": {**base, "extrapolation": EXTRAPOLATION},
        "study_summary": {k: (None if v != v else float(v)) for k, v in result.summary().iloc[0].items()},
        "backend": encoder.backend,
        **({"compare_backends": compare} if compare else {}),
    }
    write_json(Path(out), record)
    _print_report(record, load_before, out)
    return record


if __name__ == "__main__":
    main()
