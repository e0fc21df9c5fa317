"""Training cost: the hybrid sampler vs sentence-transformers' default sampler, and what a step costs
in fp32 vs bf16 mixed precision, with frozen word embeddings and with fused AdamW, phase by phase.

In one run:

a. **sampler**: milliseconds to produce one batch of indices, ``HybridBatchSampler`` (alpha 0.5)
   vs sentence-transformers' ``DefaultBatchSampler`` (shuffled, no language structure), over the
   same views dataset (one epoch each);
b. **steps**: ``pyterrier_hybrid.train`` for ``--steps`` optimizer steps per configuration
   (``--configs``: precision fp32 / bf16, trainable / frozen word embeddings, AdamW / fused AdamW;
   same seed, data and batches); the per-step wall time is read from ``training_log.jsonl`` (step 1,
   which includes warm-up, is dropped) and split into phases by a trainer callback and forward hooks:
   data (sampling, tokenizing, collating), forward (the encoder on the three columns and the loss),
   backward, optimizer (AdamW step, scheduler, zeroing).

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


#: Configuration name -> train() options.
CONFIGS = {
    "fp32": {"precision": "fp32"},
    "fp32-frozen": {"precision": "fp32", "freeze_embeddings": True},
    "bf16": {"precision": "bf16"},
    "bf16-frozen": {"precision": "bf16", "freeze_embeddings": True},
    "bf16-fused": {"precision": "bf16", "optimizer": "adamw_torch_fused"},
    "bf16-frozen-fused": {"precision": "bf16", "freeze_embeddings": True, "optimizer": "adamw_torch_fused"},
}


def _phase_timer(model: Any) -> Any:
    """A TrainerCallback that splits each step into data / forward / backward / optimizer seconds."""
    from transformers import TrainerCallback

    class PhaseTimer(TrainerCallback):
        def __init__(self) -> None:
            self.steps: list[dict[str, float]] = []
            self.fwd = 0.0
            self._t_fwd = self._t_begin = self._t_pre = self._t_end = None
            model.register_forward_pre_hook(lambda *a: setattr(self, "_t_fwd", time.perf_counter()))
            model.register_forward_hook(lambda *a: setattr(self, "fwd", self.fwd + time.perf_counter() - self._t_fwd))

        def on_step_begin(self, args, state, control, **kw):
            self._t_begin, self.fwd = time.perf_counter(), 0.0

        def on_pre_optimizer_step(self, args, state, control, **kw):
            self._t_pre = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            now = time.perf_counter()
            data = self._t_begin - self._t_end if self._t_end is not None else float("nan")
            self.steps.append({"data": data, "forward": self.fwd, "backward": self._t_pre - self._t_begin - self.fwd,
                               "optimizer": now - self._t_pre})
            self._t_end = now

    return PhaseTimer()


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="model spec or directory (default: the offline default)")
    p.add_argument("--train", default="mlqa-r", help="training source")
    p.add_argument("--languages", default=None, help="training languages (default: all of the source)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=4, help="optimizer steps per configuration (>= 2)")
    p.add_argument("--max-examples", type=int, default=None)
    p.add_argument("--configs", default="fp32,bf16,bf16-frozen,bf16-fused,bf16-frozen-fused",
                   help="comma-separated subset of " + ", ".join(CONFIGS) + " (the first is the baseline)")
    p.add_argument("--out", type=Path, default=RESULTS / "training.json")
    args = p.parse_args(argv)
    if args.steps < 2:
        p.error("--steps must be >= 2 (step 1 is warm-up and not counted)")
    args.config_names = [c.strip() for c in args.configs.split(",") if c.strip()]
    bad = [c for c in args.config_names if c not in CONFIGS]
    if bad or not args.config_names:
        p.error(f"unknown configs {bad}; valid: {', '.join(CONFIGS)}")
    return args


def _time_samplers(args: argparse.Namespace, languages: list[str] | None) -> tuple[Any, Any, float, float]:
    """a. the examples, their views, and ms per batch of the hybrid and the default sampler (printed)."""
    from sentence_transformers.base.sampler import DefaultBatchSampler

    from pyterrier_hybrid import HybridBatchSampler, build_views, load_source

    examples = load_source(args.train, languages=languages, max_examples=args.max_examples)
    views = build_views(examples, num_negatives=1, seed=0)
    hybrid = HybridBatchSampler(views.dataset, batch_size=args.batch_size, drop_last=False, seed=0, views=views, alpha=0.5)
    default = DefaultBatchSampler(range(len(views)), batch_size=args.batch_size, drop_last=False, seed=0)
    hybrid_ms, hybrid_n = _per_batch_ms(hybrid)
    default_ms, default_n = _per_batch_ms(default)
    print(f"sampler: hybrid {hybrid_ms:.3f} ms/batch ({hybrid_n} batches), default {default_ms:.3f} ms/batch "
          f"({default_n} batches)", flush=True)
    return examples, views, hybrid_ms, default_ms


def _time_steps(args: argparse.Namespace, name: str, languages: list[str] | None, out: Path) -> dict[str, Any]:
    """b. ``--steps`` training steps of configuration ``name``: per-step seconds and phases (printed)."""
    from pyterrier_hybrid import load_model, train

    model = load_model(args.model)
    timer = _phase_timer(model)
    res, wall = timed(lambda: train(
        model, args.train, sampling="hybrid", alpha=0.5, steps=args.steps, batch_size=args.batch_size,
        eval_fraction=0, languages=languages, max_examples=args.max_examples, out=out,
        verbose=False, seed=0, callbacks=[timer], **CONFIGS[name]))
    times = _step_times(res.log_path)
    phases = {k: float(np.nanmean([s[k] for s in timer.steps[1:]])) for k in timer.steps[0]}
    print(f"  {name}: {np.mean(times):.2f} s/step (steps 2..{args.steps}), "
          + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()) + f"; wall {wall:.0f}s", flush=True)
    return {"options": CONFIGS[name], "step_s": times, "mean_step_s": float(np.mean(times)),
            "phases_s": phases, "wall_s": wall,
            "precision": res.config["options"]["precision"],
            "frozen_parameters": res.config["model"]["frozen_parameters"],
            "parameters": res.config["model"]["parameters"]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the JSON record (also written to ``--out``)."""
    args = _parse(argv)
    load_before = os.getloadavg()
    languages = args.languages.split(",") if args.languages else None
    examples, views, hybrid_ms, default_ms = _time_samplers(args, languages)
    configs = args.config_names
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        steps = {name: _time_steps(args, name, languages, Path(tmp) / name) for name in configs}
    base = steps[configs[0]]["mean_step_s"]
    mean_step = float(np.mean([s["mean_step_s"] for s in steps.values()]))
    record = {
        "date": now(),
        "machine": machine(load_before),
        "versions": versions(),
        "parameters": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                          if k != "config_names"},
                       "views": len(views), "examples": len(examples)},
        "sampler": {"hybrid_ms_per_batch": hybrid_ms, "default_ms_per_batch": default_ms,
                    "hybrid_over_default": hybrid_ms / default_ms,
                    "hybrid_share_of_step": hybrid_ms / 1000 / mean_step},
        "steps": steps,
        "ratios": {f"speedup_{n}": base / s["mean_step_s"] for n, s in steps.items()},
    }
    rows = [["sampler: HybridBatchSampler", f"{hybrid_ms:.3f} ms", "", "", "", "", "",
             f"{hybrid_ms / default_ms:.2f} x default, {100 * hybrid_ms / 1000 / mean_step:.3f} % of a step"],
            ["sampler: ST DefaultBatchSampler", f"{default_ms:.3f} ms", "", "", "", "", "", ""]]
    for name, s in steps.items():
        ph = s["phases_s"]
        rows.append([f"step: {name}", f"{s['mean_step_s']:.2f} s", f"{ph['data']:.2f}", f"{ph['forward']:.2f}",
                     f"{ph['backward']:.2f}", f"{ph['optimizer']:.2f}", f"{base / s['mean_step_s']:.2f}",
                     f"{len(s['step_s'])} steps timed, batch {args.batch_size}"])
    return finish(record, args.out, table(["what", "time", "data", "forward", "backward", "optimizer",
                                           f"x {configs[0]}", "note"], rows))


if __name__ == "__main__":
    main()
