"""Encoding throughput per backend vs raw sentence-transformers fp32, each backend's mAP delta, where
the time goes, and the fraction of the CPU's peak FLOP rate reached.

In one run:

a. **raw**: ``SentenceTransformer.encode_query`` / ``encode_document`` of the same model with
   sentence-transformers' defaults (fp32, batch 32), timed before and after the backends (their
   mean is the baseline, their spread is reported as drift);
b. every backend x batch size through ``DenseEncoder.encode_queries`` / ``encode_docs``
   (questions and candidates timed separately, after a warm-up batch), ``--repeats`` rounds in
   turn (round-robin, so load from other processes spreads over all rows), the best round kept.
   Hooks on the network count the padded and real tokens it processes and its FLOPs (from the
   model config, ``_peak.py``), and time the tokenizer and the network: each row gets its GFLOP/s,
   its fraction of the CPU's peak (vector width x FMA units x clock) and its time shares;
c. the profile of ``auto`` at its default batch sizes: tokenizing, network, the rest (pooling,
   normalizing, sorting, copies), padding waste against ideal token-sorted batches, and 1 thread
   against all threads;
d. each backend at its default batch size runs the language-pair study (mono / cross / multi
   mAP) on an XQuAD-R subset; deltas are against ``torch`` fp32 (the full-benchmark check that
   decides ``auto`` is ``bench_study.py --compare-backends``).

Run: ``LAREQA_DATA_DIR=/work/shared/data python benchmarks/bench_encoding.py``. Prints tables
and writes JSON (``benchmarks/results/encoding.json`` by default).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from _common import RESULTS, finish, machine, now, table, timed, versions
from _peak import NetworkProbe, linear_flops_per_token, measured_gemm, peak


def _texts(benchmark: str, languages: list[str], n_queries: int, n_docs: int) -> tuple[list[str], list[str]]:
    """Round-robin over the languages: the first questions and candidates of each."""
    from datasets_ext import get_benchmark, load_lang

    bench = get_benchmark(benchmark)
    raws = [load_lang(bench, lang) for lang in languages]
    per_q, per_d = -(-n_queries // len(raws)), -(-n_docs // len(raws))
    queries = [q.text for r in raws for q in r.queries[:per_q]][:n_queries]
    docs = [d.text for r in raws for d in r.docs[:per_d]][:n_docs]
    return queries, docs


def _measure(enc: Any, bs: int | None, queries: list[str], docs: list[str], config: Any) -> dict[str, Any]:
    """Questions and candidates timed separately (after a warm-up batch), with the probe's counts."""
    enc.encode_queries(queries[:8], bs)
    enc.encode_docs(docs[:8], bs)
    out: dict[str, Any] = {}
    for kind, texts, fn in (("queries", queries, enc.encode_queries), ("docs", docs, enc.encode_docs)):
        with NetworkProbe(enc.model, config) as probe:
            _, secs = timed(lambda fn=fn, texts=texts: fn(texts, bs))
        out[kind] = {"s": secs, "per_s": len(texts) / secs, **probe.stats}
    return out


def _ideal_padding(model: Any, texts: list[str], kind: str, bs: int) -> dict[str, int]:
    """Padded tokens if batches were sorted by token count (what length buckets could reach)."""
    prompt = (model.prompts or {}).get(kind, "") if hasattr(model, "prompts") else ""
    lengths = sorted((len(ids) for ids in model.tokenizer([prompt + t for t in texts], truncation=True,
                                                           max_length=model.max_seq_length)["input_ids"]),
                     reverse=True)
    padded = sum(lengths[i] * len(lengths[i:i + bs]) for i in range(0, len(lengths), bs))
    return {"ideal_padded_tokens": padded, "real_tokens": sum(lengths)}


def _row(backend: str, bs: Any, m: dict[str, Any], pk: dict[str, Any], setup_s: float) -> dict[str, Any]:
    q, d = m["queries"], m["docs"]
    secs = q["s"] + d["s"]
    gflops = (q["flops"] + d["flops"]) / secs / 1e9
    precision = "bf16" if backend.endswith("bf16") else "fp32"
    shares = {k: (q[k] + d[k]) / secs for k in ("tokenize_s", "network_s")}
    return {"backend": backend, "batch_size": bs, "setup_s": setup_s,
            "queries_per_s": q["per_s"], "docs_per_s": d["per_s"], "queries_s": q["s"], "docs_s": d["s"],
            "queries": q, "docs": d, "gflops": gflops, "peak_precision": precision,
            "fraction_of_peak": gflops / pk[f"{precision}_gflops"],
            "share_tokenize": shares["tokenize_s"], "share_network": shares["network_s"],
            "share_other": 1 - shares["tokenize_s"] - shares["network_s"],
            "padding_share": 1 - (q["real_tokens"] + d["real_tokens"]) / (q["padded_tokens"] + d["padded_tokens"])}


def _profile(args: argparse.Namespace, auto_enc: Any, auto_row: dict[str, Any], queries: list[str],
             docs: list[str], config: Any, tmp: str) -> dict[str, Any]:
    """Where the time of ``auto`` goes: tokenizing, network, the rest; padding; threads (printed)."""
    import torch

    from pyterrier_hybrid import DenseEncoder, VectorCache

    q, d = auto_row["queries"], auto_row["docs"]
    ideal = {"queries": _ideal_padding(auto_enc.model, queries, "query", auto_enc.query_batch_size),
             "docs": _ideal_padding(auto_enc.model, docs, "document", auto_enc.batch_size)}
    padding = {k: {"padded_tokens": m["padded_tokens"], "real_tokens": m["real_tokens"],
                   "padding_share": 1 - m["real_tokens"] / m["padded_tokens"],
                   "ideal_padded_tokens": ideal[k]["ideal_padded_tokens"],
                   "ideal_padding_share": 1 - ideal[k]["real_tokens"] / ideal[k]["ideal_padded_tokens"]}
               for k, m in (("queries", q), ("docs", d))}
    one = DenseEncoder(args.model, backend=auto_enc.backend, threads=1, cache=VectorCache(Path(tmp) / "one-thread"))
    m1 = _measure(one, None, queries, docs, config)
    secs = q["s"] + d["s"]
    profile = {"backend": auto_enc.backend, "batch_sizes": [auto_enc.query_batch_size, auto_enc.batch_size],
            "total_s": secs, "tokenize_s": q["tokenize_s"] + d["tokenize_s"],
            "network_s": q["network_s"] + d["network_s"],
            "other_s": secs - q["tokenize_s"] - d["tokenize_s"] - q["network_s"] - d["network_s"],
            "share_tokenize": auto_row["share_tokenize"], "share_network": auto_row["share_network"],
            "share_other": auto_row["share_other"], "padding": padding,
            "threads": {"all": torch.get_num_threads(), "all_s": secs, "one_s": m1["queries"]["s"] + m1["docs"]["s"],
                        "speedup_all_over_one": (m1["queries"]["s"] + m1["docs"]["s"]) / secs}}
    print(f"  profile of {auto_enc.backend}: tokenize {profile['share_tokenize']:.1%}, network "
          f"{profile['share_network']:.1%}, other {profile['share_other']:.1%}; {profile['threads']['all']} threads "
          f"{profile['threads']['speedup_all_over_one']:.2f} x the speed of 1", flush=True)
    return profile


def _parse(argv: list[str] | None) -> argparse.Namespace:
    from pyterrier_hybrid.backends import BACKENDS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model spec or directory (default: the offline default)")
    p.add_argument("--backends", default="torch,torch-bf16,onnx,openvino,openvino-bf16",
                   help="comma-separated subset of " + ", ".join(BACKENDS)
                   + " ('auto' is reported as the backend it resolves to on this CPU)")
    p.add_argument("--batch-sizes", default="16,32,64", help="batch sizes timed per backend")
    p.add_argument("--repeats", type=int, default=2, help="rounds over all rows (round-robin); the best is kept")
    p.add_argument("--throughput-languages", default="ar,de,en,zh")
    p.add_argument("--n-queries", type=int, default=480, help="questions timed (round-robin over the languages)")
    p.add_argument("--n-docs", type=int, default=240, help="candidates timed")
    p.add_argument("--map-languages", default="de,en,zh", help="XQuAD-R languages of the mAP check ('' to skip)")
    p.add_argument("--map-limit-queries", type=int, default=300, help="questions per language in the mAP check")
    p.add_argument("--no-profile", action="store_true", help="skip the profile of 'auto' (shares, 1 thread)")
    p.add_argument("--out", type=Path, default=RESULTS / "encoding.json")
    return p.parse_args(argv)


def _inputs(args: argparse.Namespace, auto: str) -> tuple[list[str], list[str], dict[str, Any], dict[str, Any]]:
    """The texts timed, the CPU's peak FLOP rate and torch's measured GEMM rate (printed)."""
    import torch

    from pyterrier_hybrid.cpu import cpu_features

    queries, docs = _texts("xquad-r", args.throughput_languages.split(","), args.n_queries, args.n_docs)
    print(f"timing {len(queries)} questions and {len(docs)} candidates "
          f"({args.throughput_languages}), torch threads {torch.get_num_threads()}; 'auto' is {auto} on this CPU",
          flush=True)
    pk, gemm = peak(cpu_features()), measured_gemm()
    print(f"peak: {pk['cores']} cores x {pk['clock_ghz']:.2f} GHz x {pk['fp32']} fp32 / {pk['bf16']} bf16 FLOP/cycle "
          f"= {pk['fp32_gflops']:.0f} / {pk['bf16_gflops']:.0f} GFLOP/s ({pk['basis']}); torch GEMM 1024: "
          f"{gemm['fp32_gflops']:.0f} / {gemm['bf16_gflops']:.0f} GFLOP/s", flush=True)
    return queries, docs, pk, gemm


def _raw(raw_model: Any, queries: list[str], docs: list[str]) -> dict[str, float]:
    """Raw sentence-transformers rates (its defaults: fp32, batch 32), after a warm-up batch."""
    import torch

    with torch.inference_mode():
        enc_q = lambda t: raw_model.encode_query(t, normalize_embeddings=True)  # noqa: E731
        enc_d = lambda t: raw_model.encode_document(t, normalize_embeddings=True)  # noqa: E731
        enc_q(queries[:8])
        enc_d(docs[:8])
        _, tq = timed(lambda: enc_q(queries))
        _, td = timed(lambda: enc_d(docs))
    return {"queries_per_s": len(queries) / tq, "docs_per_s": len(docs) / td, "queries_s": tq, "docs_s": td}


def _best_rounds(args: argparse.Namespace, encoders: dict[str, Any], batch_sizes: list[int], queries: list[str],
                 docs: list[str], config: Any) -> dict[tuple[str, Any, str], dict[str, Any]]:
    """Every backend x batch size, ``--repeats`` rounds in turn; per (backend, batch size, kind) the best."""
    best: dict[tuple[str, Any, str], dict[str, Any]] = {}
    for rep in range(args.repeats):
        for backend, enc in encoders.items():
            defaults = (enc.query_batch_size, enc.batch_size)
            sizes: list[int | None] = [*batch_sizes]
            if defaults[0] != defaults[1] or defaults[0] not in batch_sizes:
                sizes.append(None)  # None: the backend's defaults for questions and candidates
            for bs in sizes:
                m = _measure(enc, bs, queries, docs, config)
                for kind in ("queries", "docs"):
                    key = (backend, bs, kind)
                    if key not in best or m[kind]["s"] < best[key]["s"]:
                        best[key] = m[kind]
                print(f"  round {rep + 1} {backend:<14} bs {bs or 'default'!s:>7}: "
                      f"{m['queries']['per_s']:7.1f} q/s {m['docs']['per_s']:7.1f} d/s", flush=True)
    return best


def _runs(encoders: dict[str, Any], best: dict[tuple[str, Any, str], dict[str, Any]], pk: dict[str, Any],
          setup: dict[str, float], raw_before: dict[str, float], raw_after: dict[str, float]) -> list[dict[str, Any]]:
    """One row per backend and batch size, with its speedups over raw sentence-transformers."""
    runs: list[dict[str, Any]] = []
    for backend, enc in encoders.items():
        for bs in dict.fromkeys(k[1] for k in best if k[0] == backend):
            m = {kind: best[(backend, bs, kind)] for kind in ("queries", "docs")}
            label = bs or f"default {enc.query_batch_size},{enc.batch_size}"
            runs.append(_row(backend, label, m, pk, setup[backend]))
    base_q = (raw_before["queries_per_s"] + raw_after["queries_per_s"]) / 2
    base_d = (raw_before["docs_per_s"] + raw_after["docs_per_s"]) / 2
    for r in runs:
        r["speedup_queries"] = r["queries_per_s"] / base_q
        r["speedup_docs"] = r["docs_per_s"] / base_d
        # the study encodes as many questions as candidates: harmonic mix of the two rates
        r["speedup_mixed"] = (1 / base_q + 1 / base_d) / (1 / r["queries_per_s"] + 1 / r["docs_per_s"])
    return runs


def _default_row(enc: Any, runs: list[dict[str, Any]], backend: str) -> dict[str, Any]:
    """The row of ``backend`` at its default batch sizes."""
    mine = [r for r in runs if r["backend"] == backend]
    same = [r for r in mine if r["batch_size"] == enc.batch_size == enc.query_batch_size]
    return (same or [r for r in mine if str(r["batch_size"]).startswith("default")])[0]


def _quality(args: argparse.Namespace, encoders: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each backend at its default batch sizes on the language-pair study; deltas against torch fp32."""
    from pyterrier_hybrid import evaluate
    from pyterrier_hybrid.backends import default_batch_size

    quality: dict[str, dict[str, float]] = {}
    map_langs = [x for x in args.map_languages.split(",") if x]
    for backend, enc in encoders.items() if map_langs else []:
        enc.batch_size, enc.query_batch_size = default_batch_size(backend), default_batch_size(backend, "query")
        res, secs = timed(lambda e=enc: evaluate(e, benchmark="xquad-r", languages=map_langs,
                                                 limit_queries=args.map_limit_queries, verbose=False))
        s = res.summary().iloc[0]  # one language: the monolingual setting only
        maps = [k for k in ("mono_map", "cross_map", "multi_map") if k in s.index]
        quality[backend] = {**{k: float(s[k]) for k in maps}, "study_s": secs}
        print(f"  mAP {backend:<14}: " + " ".join(f"{k.split('_')[0]} {s[k]:.4f}" for k in maps)
              + f" ({secs:.0f}s)", flush=True)
    ref = quality.get("torch")
    for q in quality.values():
        if ref:
            maps = [k for k in ("mono_map", "cross_map", "multi_map") if k in ref]
            for k in maps:
                q[f"delta_{k}"] = q[k] - ref[k]
            q["max_abs_delta"] = max(abs(q[f"delta_{k}"]) for k in maps)
    return quality


def _text(record: dict[str, Any], encoders: dict[str, Any], auto: str) -> str:
    """The printed table: one line per run, raw sentence-transformers first."""
    raw, runs, quality = record["raw_sentence_transformers"], record["runs"], record["quality"]
    rows = [["raw ST fp32 (bs 32)", "-", f"{raw['queries_per_s']:.1f}", f"{raw['docs_per_s']:.1f}", "1.00", "1.00",
             "1.00", "", "", "", "0 (ref.)"]]
    for r in runs:
        q = quality.get(r["backend"], {})
        default = r is _default_row(encoders[r["backend"]], runs, r["backend"])
        delta = f"{q['max_abs_delta']:.4f}" if "max_abs_delta" in q and default else ""
        rows.append([r["backend"], r["batch_size"], f"{r['queries_per_s']:.1f}", f"{r['docs_per_s']:.1f}",
                     f"{r['speedup_queries']:.2f}", f"{r['speedup_docs']:.2f}", f"{r['speedup_mixed']:.2f}",
                     f"{r['gflops']:.0f}", f"{r['fraction_of_peak']:.0%} {r['peak_precision']}",
                     f"{r['share_tokenize']:.0%}/{r['share_network']:.0%}/{r['padding_share']:.0%}", delta])
    drift = raw["after"]["docs_per_s"] / raw["before"]["docs_per_s"]
    text = table(["backend", "batch", "q/s", "d/s", "x q", "x d", "x mixed", "GFLOP/s", "of peak",
                  "tok/net/pad", "max |dmAP|"], rows)
    text += f"\nraw ST drift (after / before, candidates): {drift:.2f}"
    if "default_over_best_openvino" in record["target"]:
        text += f"\ndefault ({auto}) / best OpenVINO (x mixed): {record['target']['default_over_best_openvino']:.3f}"
    return text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON record (also written to ``--out``)."""
    from pyterrier_hybrid.backends import DEFAULT_BACKEND, default_batch_size, resolve_backend
    from pyterrier_hybrid.cpu import cpu_record

    args = _parse(argv)
    auto = resolve_backend("auto")
    backends = list(dict.fromkeys(auto if b.strip() == "auto" else b.strip() for b in args.backends.split(",") if b.strip()))
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    load_before = os.getloadavg()

    import torch

    from pyterrier_hybrid import DenseEncoder, VectorCache, load_model

    queries, docs, pk, gemm = _inputs(args, auto)
    raw_model = load_model(args.model)
    config = raw_model[0].auto_model.config
    raw_before = _raw(raw_model, queries, docs)
    print(f"raw sentence-transformers fp32: {raw_before['queries_per_s']:.1f} q/s, "
          f"{raw_before['docs_per_s']:.1f} d/s", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-enc-") as tmp:
        encoders, setup = {}, {}
        for backend in backends:
            encoders[backend], setup[backend] = timed(
                lambda b=backend: DenseEncoder(args.model, backend=b, cache=VectorCache(Path(tmp) / b)))
        best = _best_rounds(args, encoders, batch_sizes, queries, docs, config)
        raw_after = _raw(raw_model, queries, docs)
        runs = _runs(encoders, best, pk, setup, raw_before, raw_after)
        profile = None
        if auto in encoders and not args.no_profile:
            profile = _profile(args, encoders[auto], _default_row(encoders[auto], runs, auto), queries, docs, config, tmp)
        quality = _quality(args, encoders)

    best_bs = {b: max((r for r in runs if r["backend"] == b), key=lambda r: r["speedup_mixed"]) for b in backends}
    record = {
        "date": now(),
        "machine": machine(load_before),
        "cpu": cpu_record(),
        "versions": versions(),
        "parameters": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                       "n_queries": len(queries), "n_docs": len(docs), "torch_threads": torch.get_num_threads(),
                       "default_backend": DEFAULT_BACKEND, "auto_resolves_to": auto,
                       "default_batch_sizes": {b: {k: default_batch_size(b, k) for k in ("query", "document")}
                                               for b in backends}},
        "peak": {**pk, "measured_gemm_1024": gemm, "flops_per_token_linear": linear_flops_per_token(config)},
        "raw_sentence_transformers": {"before": raw_before, "after": raw_after,
                                      "queries_per_s": (raw_before["queries_per_s"] + raw_after["queries_per_s"]) / 2,
                                      "docs_per_s": (raw_before["docs_per_s"] + raw_after["docs_per_s"]) / 2},
        "runs": runs,
        "best_batch_size": {b: r["batch_size"] for b, r in best_bs.items()},
        "profile": profile,
        "quality": quality,
        "target": {"default_over_best_openvino_min": 0.95, "max_abs_delta_map": 0.005},
    }
    ov = [r for r in runs if r["backend"].startswith("openvino")]
    if auto in encoders and ov:
        record["target"]["default_over_best_openvino"] = (_default_row(encoders[auto], runs, auto)["speedup_mixed"]
                                                          / max(r["speedup_mixed"] for r in ov))
    return finish(record, args.out, _text(record, encoders, auto))


if __name__ == "__main__":
    main()
