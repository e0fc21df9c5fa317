"""Training cost: the hybrid sampler vs sentence-transformers' default sampler, and frozen vs
trainable word embeddings.

In one run:

a. **sampler**: milliseconds to produce one batch of indices, ``HybridBatchSampler`` (alpha 0.5)
   vs sentence-transformers' ``DefaultBatchSampler`` (shuffled, no language structure), over the
   same views dataset (one epoch each);
b. **steps**: ``pyterrier_hybrid.train`` for ``--steps`` optimizer steps per configuration
   (trainable / frozen word embeddings, same seed, data and batches); the per-step wall time is
   read from ``training_log.jsonl`` (step 1, which includes data loading warm-up, is dropped).

Run: ``LAREQA_DATA_DIR=/work/shared/data python benchmarks/bench_training.py``. Prints a table
and writes JSON (``benchmarks/results/training.json`` by default).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS, finish, machine, now, table, timed, versions


def _per_batch_ms(sampler: Any) -> tuple[float, int]:
    start = time.perf_counter()
    n = sum(1 for _ in sampler)
    return (time.perf_counter() - start) * 1000 / max(n, 1), n


def _step_times(log: Path) -> list[float]:
    secs = [json.loads(line)["seconds"] for line in log.read_text().splitlines() if '"loss"' in line]
    return list(np.diff(secs))  # drops step 1 (its time includes the warm-up)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON record (also written to ``--out``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model spec or directory (default: the offline default)")
    p.add_argument("--train", default="mlqa-r", help="training source")
    p.add_argument("--languages", default=None, help="training languages (default: all of the source)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=4, help="optimizer steps per configuration (>= 2)")
    p.add_argument("--max-examples", type=int, default=None)
    p.add_argument("--out", type=Path, default=RESULTS / "training.json")
    args = p.parse_args(argv)
    if args.steps < 2:
        p.error("--steps must be >= 2 (step 1 is warm-up and not counted)")
    load_before = os.getloadavg()
    languages = args.languages.split(",") if args.languages else None

    from sentence_transformers.base.sampler import DefaultBatchSampler

    from pyterrier_hybrid import HybridBatchSampler, build_views, load_source, train

    examples = load_source(args.train, languages=languages, max_examples=args.max_examples)
    views = build_views(examples, num_negatives=1, seed=0)
    hybrid = HybridBatchSampler(views.dataset, batch_size=args.batch_size, drop_last=False, seed=0, views=views, alpha=0.5)
    default = DefaultBatchSampler(range(len(views)), batch_size=args.batch_size, drop_last=False, seed=0)
    hybrid_ms, hybrid_n = _per_batch_ms(hybrid)
    default_ms, default_n = _per_batch_ms(default)
    print(f"sampler: hybrid {hybrid_ms:.3f} ms/batch ({hybrid_n} batches), default {default_ms:.3f} ms/batch "
          f"({default_n} batches)", flush=True)

    configs = {"trainable": False, "frozen": True}
    steps: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        for name, freeze in configs.items():
            res, wall = timed(lambda n=name, f=freeze: train(
                args.model, args.train, sampling="hybrid", alpha=0.5, steps=args.steps, batch_size=args.batch_size,
                freeze_embeddings=f, eval_fraction=0, languages=languages, max_examples=args.max_examples,
                out=Path(tmp) / n, verbose=False, seed=0))
            times = _step_times(res.log_path)
            steps[name] = {"step_s": times, "mean_step_s": float(np.mean(times)), "wall_s": wall,
                           "frozen_parameters": res.config["model"]["frozen_parameters"],
                           "parameters": res.config["model"]["parameters"]}
            print(f"  {name}: {np.mean(times):.2f} s/step (steps 2..{args.steps}), wall {wall:.0f}s", flush=True)
    mean_step = float(np.mean([s["mean_step_s"] for s in steps.values()]))
    record = {
        "date": now(),
        "machine": machine(load_before),
        "versions": versions(),
        "parameters": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                       "views": len(views), "examples": len(examples)},
        "sampler": {"hybrid_ms_per_batch": hybrid_ms, "default_ms_per_batch": default_ms,
                    "hybrid_over_default": hybrid_ms / default_ms,
                    "hybrid_share_of_step": hybrid_ms / 1000 / mean_step},
        "steps": steps,
        "ratios": {"frozen_over_trainable": steps["frozen"]["mean_step_s"] / steps["trainable"]["mean_step_s"]},
    }
    rows = [["sampler: HybridBatchSampler", f"{hybrid_ms:.3f} ms/batch",
             f"{hybrid_ms / default_ms:.2f} x default, {100 * hybrid_ms / 1000 / mean_step:.3f} % of a step"],
            ["sampler: ST DefaultBatchSampler", f"{default_ms:.3f} ms/batch", ""]]
    for name, s in steps.items():
        rows.append([f"step, {name} word embeddings", f"{s['mean_step_s']:.2f} s",
                     f"{len(s['step_s'])} steps timed, batch {args.batch_size}"])
    rows.append(["frozen / trainable", f"{record['ratios']['frozen_over_trainable']:.2f}", ""])
    return finish(record, args.out, table(["what", "time", "note"], rows))


if __name__ == "__main__":
    main()
