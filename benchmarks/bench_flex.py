"""pyterrier-dr's FlexIndex writer and exact retriever beside ours, on the same vectors (issue 27
item 10: where pyterrier-dr does the job equally well we use it; what stays ours says why).

1. Writing N synthetic 384-d vectors: ``FlexIndex.index`` (pyterrier-dr) vs ``DenseIndex.build``:
   documents per second; a one-document index; what ``mode="overwrite"`` does to a directory that is
   not an index; what an input failing half-way leaves at the path.
2. Exact retrieval, top 1000 of N for ``--queries`` queries: ``FlexIndex.np_retriever`` vs
   ``DenseIndex.retriever()``: queries per second, identical top-k sets, and on an index where every
   vector appears twice (two docnos, equal scores) whether ties come in trec_eval's order (docno
   descending), which is the order in which trec_eval / pytrec_eval evaluate a run.

Run: ``python benchmarks/bench_flex.py`` (writes ``benchmarks/results/flex-<kind>.json``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _common import RESULTS, finish, machine, now, table, versions

DIM = 384


def _vectors(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _overwrite_non_index_dir(work: Path, vecs: np.ndarray) -> dict[str, Any]:
    """Whether each writer's ``overwrite`` keeps a directory that holds no index (here: a note)."""
    import pyterrier_dr

    from pyterrier_hybrid import DenseIndex

    notes = work / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")
    pyterrier_dr.FlexIndex(str(notes), verbose=False).indexer(mode="overwrite").index(
        [{"docno": "a", "doc_vec": vecs[0]}, {"docno": "b", "doc_vec": vecs[1]}])
    theirs_kept = (notes / "todo.txt").exists()
    shutil.rmtree(notes)
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")
    try:
        DenseIndex.build(notes, ["a", "b"], vecs[:2], overwrite=True)
        ours = "overwritten"
    except ValueError as e:
        ours = f"refused: {e}"
    return {"pyterrier_dr_kept_the_file": theirs_kept, "ours": ours,
            "ours_kept_the_file": (notes / "todo.txt").exists()}


def _failed_input_leaves(work: Path, vecs: np.ndarray) -> dict[str, Any]:
    """What each writer leaves at the path when its input fails after ten documents (None: nothing)."""
    import pyterrier_dr

    from pyterrier_hybrid import DenseIndex

    def failing() -> Any:
        for i in range(10):
            yield {"docno": f"x{i}", "doc_vec": vecs[i]}
        raise RuntimeError("upstream failure")

    left = {}
    for name, write in (("pyterrier_dr", lambda p: pyterrier_dr.FlexIndex(str(p), verbose=False).index(failing())),
                        ("ours", lambda p: DenseIndex(p).indexer().index(failing()))):
        path = work / f"fail-{name}"
        try:
            write(path)
        except RuntimeError:
            pass
        left[name] = sorted(p.name for p in path.iterdir()) if path.exists() else None
    return left


def writing(work: Path, n: int) -> dict[str, Any]:
    import pyterrier_dr

    from pyterrier_hybrid import DenseIndex

    vecs = _vectors(n, 0)
    docnos = [f"d{i:08d}" for i in range(n)]
    out: dict[str, Any] = {"n": n}
    started = time.perf_counter()
    pyterrier_dr.FlexIndex(str(work / "theirs"), verbose=False).index(
        {"docno": d, "doc_vec": v} for d, v in zip(docnos, vecs, strict=True))
    out["pyterrier_dr_docs_per_s"] = round(n / (time.perf_counter() - started))
    started = time.perf_counter()
    DenseIndex.build(work / "ours", docnos, vecs)
    out["ours_docs_per_s"] = round(n / (time.perf_counter() - started))

    def one_doc(write: Any, path: Path) -> str:
        try:
            write(path)
            return f"ok, {len(pyterrier_dr.FlexIndex(str(path), verbose=False).docnos().fwd[np.arange(1)])} docno read back"
        except Exception as e:  # noqa: BLE001 - recorded
            return f"{type(e).__name__}: {e}"

    out["one_document"] = {
        "pyterrier_dr": one_doc(lambda p: pyterrier_dr.FlexIndex(str(p), verbose=False).index(
            [{"docno": "only", "doc_vec": vecs[0]}]), work / "one-theirs"),
        "ours": one_doc(lambda p: DenseIndex.build(p, ["only"], vecs[:1]), work / "one-ours"),
    }
    out["overwrite_non_index_dir"] = _overwrite_non_index_dir(work, vecs)
    out["failed_input_leaves"] = _failed_input_leaves(work, vecs)
    return out


def retrieval(work: Path, n: int, queries: int, k: int) -> dict[str, Any]:
    import pyterrier_dr

    from pyterrier_hybrid import DenseIndex

    half = _vectors(n // 2, 1)
    q = _vectors(queries, 2)
    frame = pd.DataFrame({"qid": [str(i) for i in range(queries)], "query_vec": list(q)})
    out: dict[str, Any] = {"n": n, "queries": queries, "k": k}
    # every vector twice: docnos a<i> and b<i> tie exactly; trec_eval ranks b<i> (docno descending) first
    docnos = [f"a{i:08d}" for i in range(n // 2)] + [f"b{i:08d}" for i in range(n // 2)]
    ours = DenseIndex.build(work / "ties", docnos, np.concatenate([half, half]))
    flex = pyterrier_dr.FlexIndex(str(ours.path), verbose=False)
    runs = {}
    for name, retriever in (("pyterrier_dr", flex.np_retriever(num_results=k)), ("ours", ours.retriever(num_results=k))):
        retriever(frame.head(2))  # warm: memory map, docno order
        started = time.perf_counter()
        runs[name] = retriever(frame)
        out[f"{name}_queries_per_s"] = round(queries / (time.perf_counter() - started), 2)
    for name, run in runs.items():
        run = run.sort_values(["qid", "rank"])
        pair = run["docno"].str[1:]
        first = run.groupby(["qid", pair])["docno"].transform("first")
        pairs = run[run.groupby(["qid", pair])["docno"].transform("size") == 2]
        in_order = (first[pairs.index].str[0] == "b").mean() if len(pairs) else float("nan")
        out[f"{name}_tied_pairs_in_trec_eval_order"] = round(float(in_order), 4)
    ours_scores = runs["ours"].sort_values(["qid", "rank"])["score"].to_numpy()
    their_scores = runs["pyterrier_dr"].sort_values(["qid", "rank"])["score"].to_numpy()
    out["max_score_difference_by_rank"] = float(np.abs(ours_scores - their_scores).max())
    return out


def hnsw(work: Path, n: int, queries: int, k: int) -> dict[str, Any]:
    """faiss HNSW (M=32, efConstruction=200, efSearch=128): pyterrier-dr's retriever vs ours."""
    import pyterrier_dr

    from pyterrier_hybrid import DenseIndex

    vecs = _vectors(n, 3)
    q = _vectors(queries, 4)
    frame = pd.DataFrame({"qid": [str(i) for i in range(queries)], "query_vec": list(q)})
    ours = DenseIndex.build(work / "hnsw", [f"d{i:08d}" for i in range(n)], vecs)
    exact = ours.retriever(num_results=k)(frame)
    flex = pyterrier_dr.FlexIndex(str(ours.path), verbose=False)
    out: dict[str, Any] = {"n": n, "queries": queries, "k": k}
    for name, make in (("pyterrier_dr", lambda: flex.faiss_hnsw_retriever(neighbours=32, ef_construction=200,
                                                                          ef_search=128, num_results=k)),
                       ("ours", lambda: ours.retriever(method="hnsw", M=32, ef_construction=200, ef_search=128,
                                                       num_results=k))):
        before = {p for p in ours.path.rglob("*") if p.is_file()}
        started = time.perf_counter()
        retriever = make()
        retriever(frame.head(1))
        build = time.perf_counter() - started
        started = time.perf_counter()
        run = retriever(frame)
        seconds = time.perf_counter() - started
        added = sum(p.stat().st_size for p in ours.path.rglob("*") if p.is_file() and p not in before)
        hits = run.merge(exact[["qid", "docno", "score"]], on=["qid", "docno"], suffixes=("", "_exact"))
        out[name] = {"build_seconds": round(build, 1), "queries_per_s": round(queries / seconds, 1),
                     "disk_mb_added": round(added / 2**20, 1), f"recall@{k}": round(len(hits) / len(exact), 4),
                     "max_abs_score_error": float((hits["score"] - hits["score_exact"]).abs().max())}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison; returns the JSON record (also written to ``--out``)."""
    from pyterrier_hybrid.cpu import cpu_kind

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--hnsw-n", type=int, default=50_000, help="documents of the HNSW comparison")
    p.add_argument("--out")
    args = p.parse_args(argv)
    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-flex-"))
    try:
        record = {"date": now(), "versions": versions(), "params": vars(args),
                  "writing": writing(work, args.n), "retrieval": retrieval(work, args.n, args.queries, args.k),
                  "hnsw": hnsw(work, args.hnsw_n, args.queries, 100)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record["machine"] = machine(load)
    w, r = record["writing"], record["retrieval"]
    rows = [["write docs/s", w["pyterrier_dr_docs_per_s"], w["ours_docs_per_s"]],
            ["one-document index", w["one_document"]["pyterrier_dr"][:60], w["one_document"]["ours"][:60]],
            ["overwrite of a non-index dir keeps its files", w["overwrite_non_index_dir"]["pyterrier_dr_kept_the_file"],
             w["overwrite_non_index_dir"]["ours_kept_the_file"]],
            ["input failing half-way leaves", w["failed_input_leaves"]["pyterrier_dr"], w["failed_input_leaves"]["ours"]],
            [f"exact top {args.k} queries/s", r["pyterrier_dr_queries_per_s"], r["ours_queries_per_s"]],
            ["tied pairs in trec_eval order", r["pyterrier_dr_tied_pairs_in_trec_eval_order"],
             r["ours_tied_pairs_in_trec_eval_order"]],
            ["max score difference at equal rank", r["max_score_difference_by_rank"], ""]]
    h = record["hnsw"]
    for key in ("build_seconds", "queries_per_s", "disk_mb_added", "recall@100", "max_abs_score_error"):
        rows.append([f"HNSW {h['n']:,}: {key}", h["pyterrier_dr"][key], h["ours"][key]])
    out = Path(args.out) if args.out else RESULTS / f"flex-{cpu_kind()}.json"
    return finish(record, out, table(["", "pyterrier-dr", "ours"], rows))


if __name__ == "__main__":
    main()
