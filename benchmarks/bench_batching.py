"""Batches cut by token count (what ``DenseEncoder`` does) against sentence-transformers' own order by
characters: wall time, padded tokens and how far the vectors move, on the study's texts.

Each round encodes every selected language's questions and candidates (the study's texts, prompts
and batch sizes) once per order, the two orders alternating, so a burst of load from another process
hits both; the best round of each is kept. The vectors of the two orders are compared (cosine): the
same texts in other batches.

Run: ``LAREQA_DATA_DIR=/work/shared/data python benchmarks/bench_batching.py [--backend auto]
[--languages de,zh,ar,hi] [--rounds 3]``. Prints a table and writes JSON
(``benchmarks/results/batching-<kind>.json`` by default).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS, finish, machine, now, table, versions
from _peak import NetworkProbe


def _encode_all(enc: Any, benchmark: str, langs: dict) -> np.ndarray:
    """Every language's questions and candidates, encoded as the study encodes them."""
    from pyterrier_hybrid.study import encode_languages

    qvecs, dvecs = encode_languages(enc, benchmark, langs, verbose=False)
    return np.vstack([v for lang in langs for v in (qvecs[lang], dvecs[lang])])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--benchmark", default="xquad-r", choices=["xquad-r", "mlqa-r"])
    ap.add_argument("--languages", default="de,zh,ar,hi")
    ap.add_argument("--limit-queries", type=int, default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    from pyterrier_hybrid import DenseEncoder, encoders
    from pyterrier_hybrid.cpu import cpu_features, cpu_kind
    from pyterrier_hybrid.study_data import load_languages

    load = os.getloadavg()
    langs = load_languages(args.benchmark, [x for x in args.languages.split(",") if x],
                           limit_queries=args.limit_queries)
    enc = DenseEncoder(args.model, backend=args.backend, cache=False, verbose=False)
    by_tokens = encoders._batched_by_tokens
    orders = {"characters (sentence-transformers)": lambda *a, **k: contextlib.nullcontext(),
              "tokens (DenseEncoder)": by_tokens}
    _encode_all(enc, args.benchmark, {k: langs[k] for k in list(langs)[:1]})  # warm-up (compilation, first batches)
    best: dict[str, dict[str, Any]] = {}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        for name, order in orders.items():
            encoders._batched_by_tokens = order
            try:
                with NetworkProbe(enc.model, enc.model[0].auto_model.config) as probe:
                    start = time.perf_counter()
                    vectors[name] = _encode_all(enc, args.benchmark, langs)
                    secs = time.perf_counter() - start
            finally:
                encoders._batched_by_tokens = by_tokens
            if name not in best or secs < best[name]["s"]:
                best[name] = {"s": secs, "padded_tokens": probe.stats["padded_tokens"],
                              "real_tokens": probe.stats["real_tokens"]}
    chars, toks = (best[n] for n in orders)
    cos = np.sum(vectors[list(orders)[0]] * vectors[list(orders)[1]], axis=1)
    n_texts = len(cos)
    rows = [[name, f"{r['s']:.1f}", f"{n_texts / r['s']:.1f}", r["padded_tokens"],
             f"{1 - r['real_tokens'] / r['padded_tokens']:.1%}", f"{r['s'] / chars['s']:.3f}"]
            for name, r in best.items()]
    text = "\n".join([f"{args.benchmark} {','.join(langs)}: {n_texts} texts, backend {enc.backend} "
                      f"(batch {enc.query_batch_size} questions / {enc.batch_size} candidates), best of {args.rounds}",
                      table(["batches ordered by", "s", "texts/s", "padded tokens", "padding", "x characters"], rows),
                      f"cosine between the two orders' vectors: min {cos.min():.6f}, mean {cos.mean():.6f}"])
    record = {"date": now(), "machine": machine(load), "versions": versions(),
              "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "backend": enc.backend, "batch_sizes": [enc.query_batch_size, enc.batch_size], "texts": n_texts,
              "orders": best, "ratio_tokens_over_characters": toks["s"] / chars["s"],
              "padded_ratio": toks["padded_tokens"] / chars["padded_tokens"],
              "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean())}
    out = args.out or RESULTS / f"batching-{cpu_kind(cpu_features())}.json"
    return finish(record, out, text)


if __name__ == "__main__":
    main()
