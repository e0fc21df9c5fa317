"""Scale: a DenseIndex of N synthetic 384-d vectors, exact search vs FAISS HNSW and IVF.

Vectors are L2-normalized draws from an anisotropic Gaussian (see :func:`synthetic`); queries are
further draws. For each
backend it measures build time, index size on disk, the process' peak RSS growth, queries per
second through the PyTerrier retriever (``DenseIndex.retriever(method=..., num_results=k)``)
and recall@k against the exact top k.

Run: ``python benchmarks/bench_index.py`` (1M vectors; ``--n`` for fewer). Prints a table and
writes JSON (``benchmarks/results/index.json`` by default).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS, finish, machine, now, table, timed, versions


def synthetic(n: int, n_queries: int, dim: int, decay: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` doc and ``n_queries`` query vectors (float32, unit length) from one anisotropic Gaussian
    whose per-dimension scale decays as ``(1 + i) ** -decay`` around a shared mean direction: like
    sentence embeddings, a few directions carry most of the variance and neighbourhoods are
    continuous (no planted clusters that would make IVF trivially exact)."""
    rng = np.random.default_rng(seed)
    scale = ((1 + np.arange(dim)) ** -decay).astype(np.float32)
    mean = (rng.standard_normal(dim) / np.sqrt(dim)).astype(np.float32)

    def draw(m: int) -> np.ndarray:
        x = mean + scale * rng.standard_normal((m, dim), dtype=np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    docs = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 65536):
        docs[start:start + min(65536, n - start)] = draw(min(65536, n - start))
    return docs, draw(n_queries)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000, help="documents")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--decay", type=float, default=0.5, help="per-dimension scale decay of the synthetic Gaussian")
    p.add_argument("--k", type=int, default=100, help="results per query; recall@k against exact")
    p.add_argument("--hnsw", default="M=16,ef_construction=64", help="HNSW build parameters")
    p.add_argument("--ef-search", default="128,256,512,1024", help="HNSW query-time ef_search values (>= k)")
    p.add_argument("--ivf", default="", help="IVF build parameters (n_list default: ~sqrt(n))")
    p.add_argument("--n-probe", default="8,32,128", help="IVF query-time n_probe values")
    p.add_argument("--backends", default="exact,hnsw,ivf")
    p.add_argument("--out", type=Path, default=RESULTS / "index.json")
    return p.parse_args(argv)


def _settings(args: argparse.Namespace) -> list[tuple[str, dict[str, int]]]:
    """The (method, parameters) settings measured: exact, then HNSW per ef_search, IVF per n_probe."""
    def params(text: str) -> dict[str, int]:
        return {k: int(v) for k, v in (kv.split("=") for kv in text.split(",") if kv)}

    settings: list[tuple[str, dict[str, int]]] = [("exact", {})]
    settings += [("hnsw", {**params(args.hnsw), "ef_search": int(e)}) for e in args.ef_search.split(",") if e]
    settings += [("ivf", {**params(args.ivf), "n_probe": int(e)}) for e in args.n_probe.split(",") if e]
    wanted = args.backends.split(",")
    return [(b, kw) for b, kw in settings if b in wanted]


def _measure(index: Any, directory: Path, backend: str, kw: dict[str, int], topics: Any, k: int, flat_s: float,
             flat_mb: float, exact_top: Any) -> tuple[dict[str, Any], Any]:
    """One setting: build (or load) its structure, search all topics; its record and its top k per query."""
    retr = index.retriever(method=backend, num_results=k, **kw)
    rss_before = _peak_rss_mb()
    info, build_s = timed(retr.ann_info) if backend != "exact" else (None, 0.0)
    built_now = info is not None and info["build_seconds"] >= build_s * 0.5  # not loaded from disk
    retr.transform(topics.iloc[:8])  # warm-up (loads the structure)
    res, search_s = timed(lambda r=retr: r.transform(topics))
    top = res.sort_values(["qid", "rank"]).groupby("qid", sort=False)["docno"].apply(list)
    top = top.reindex(topics.qid)
    exact_top = top if backend == "exact" else exact_top
    recall = (float(np.mean([len(set(a) & set(b)) / k for a, b in zip(top, exact_top, strict=True)]))
              if exact_top is not None else None)
    ann_mb = sum(_dir_mb(d) for d in (directory / "ann").glob(f"{backend}_*")) if info else 0.0
    return {
        "backend": backend, "params": {**(info or {}).get("build_params", {}), **kw},
        "build_s": flat_s + (info["build_seconds"] if info else 0.0), "ann_build_s": info["build_seconds"] if info else 0.0,
        "built_in_this_setting": built_now, "disk_mb": flat_mb + ann_mb,
        "peak_rss_growth_mb": max(_peak_rss_mb() - rss_before, 0.0), "queries_per_s": len(topics) / search_s,
        f"recall@{k}": recall,
    }, top


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON record (also written to ``--out``)."""
    args = _parse(argv)
    load_before = os.getloadavg()
    import pandas as pd

    from pyterrier_hybrid import DenseIndex

    docs, queries = synthetic(args.n, args.queries, args.dim, args.decay)
    docnos = np.char.add("d", np.arange(args.n).astype(str))
    topics = pd.DataFrame({"qid": [f"q{i}" for i in range(len(queries))], "query_vec": list(queries)})
    print(f"{args.n} x {args.dim} vectors ({docs.nbytes / 2**20:.0f} MiB), {len(queries)} queries", flush=True)
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        rss0 = _peak_rss_mb()
        index, flat_s = timed(lambda: DenseIndex.build(Path(tmp) / "idx", docnos, docs))
        flat_mb = _dir_mb(Path(tmp) / "idx")
        exact_top = None
        for backend, kw in _settings(args):
            r, top = _measure(index, Path(tmp) / "idx", backend, kw, topics, args.k, flat_s, flat_mb, exact_top)
            exact_top = top if backend == "exact" else exact_top
            query_param = {"hnsw": "ef_search", "ivf": "n_probe"}.get(backend)
            name = f"{backend} {query_param}={kw[query_param]}" if query_param else backend
            results[name] = r
            recall = r[f"recall@{args.k}"]
            rows.append([name, f"{r['build_s']:.1f}", f"{r['disk_mb']:.0f}", f"{r['peak_rss_growth_mb']:.0f}",
                         f"{r['queries_per_s']:.1f}", "-" if recall is None else f"{recall:.4f}"])
            print(f"  {rows[-1]}", flush=True)
        rss_total = _peak_rss_mb() - rss0
    record = {
        "date": now(),
        "machine": machine(load_before),
        "versions": versions(),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "flat_write_s": flat_s,
        "backends": results,
        "peak_rss_growth_total_mb": rss_total,
    }
    text = table(["backend", "build s", "disk MiB", "peak RSS +MiB", "queries/s", f"recall@{args.k}"], rows)
    return finish(record, args.out, text + "\nbuild s: flat vectors written + the faiss structure (built once per "
                  "backend, reused across query-time settings); RSS growth is of the process' peak")


if __name__ == "__main__":
    main()
