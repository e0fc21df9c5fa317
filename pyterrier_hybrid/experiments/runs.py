"""Run reuse for experiments: train a model into a run directory unless a finished run with the same
options is there (then reuse it); resume an interrupted one from its last checkpoint."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

from ..train_config import TrainConfig, describe_differences
from ..training import CONFIG_NAME, LOG_NAME, kept_checkpoint, train

__all__ = ["finished", "train_or_reuse", "train_root", "training_record"]

log = logging.getLogger(__name__)


def train_root(out: str | Path, train_source: Any) -> Path:
    """``out/train-<source>``, the source made file-name safe."""
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", str(train_source).removeprefix("irds:")).strip("_")
    return Path(out) / f"train-{slug}"


def finished(run_dir: Path, config: TrainConfig, train_source: Any) -> bool:
    """Whether ``run_dir`` holds a finished model trained from ``train_source`` with ``config``
    (precision resolved for this machine); raises if it holds one trained otherwise."""
    cfg_path = run_dir / CONFIG_NAME
    if not (run_dir / "model" / "modules.json").is_file() or not cfg_path.is_file():
        return False
    recorded = json.loads(cfg_path.read_text())
    if "result" not in recorded:
        return False
    diff = TrainConfig.from_json(recorded.get("options", {})).differences(config.resolved())
    source = recorded.get("options", {}).get("source", recorded.get("source"))
    if source != str(train_source):
        diff["source"] = (source, str(train_source))
    if diff:
        raise ValueError(f"{run_dir} holds a model trained with other options ({describe_differences(diff)}); "
                         f"use another --out")
    return True


def training_record(run_dir: Path) -> dict[str, Any]:
    """What a finished run reports: steps, best / kept checkpoint, validation losses, seconds."""
    cfg = json.loads((run_dir / CONFIG_NAME).read_text())
    lines = [json.loads(line) for line in (run_dir / LOG_NAME).read_text().splitlines() if line.strip()]
    steps = [x for x in lines if "loss" in x]
    evals = [x for x in lines if "eval_loss" in x]
    res, opts = cfg["result"], TrainConfig.from_json(cfg["options"])
    return {"steps": res["global_step"], "best_checkpoint": res["best_checkpoint"],
            "best_eval_loss": res["best_eval_loss"], "keep": opts.keep, "precision": opts.precision,
            "kept_checkpoint": res.get("kept_checkpoint") or kept_checkpoint(
                run_dir / "checkpoints", opts.keep, res["best_checkpoint"], res["global_step"]),
            "train_seconds": steps[-1]["seconds"] if steps else None,
            "final_loss": steps[-1]["loss"] if steps else None,
            "eval_losses": {x["step"]: x["eval_loss"] for x in evals},
            "batches": cfg.get("data", {}).get("batches")}


def train_or_reuse(model: Any, train_source: Any, run_dir: Path, config: TrainConfig, *, label: str,
                   verbose: bool = True) -> dict[str, Any]:
    """Train into ``run_dir`` unless it holds a finished model trained with the same options (then
    reuse it); resume from the last checkpoint of an interrupted run. Returns the training record
    (model path, steps, best checkpoint and validation loss, training seconds)."""
    if finished(run_dir, config, train_source):
        log.warning("%s: trained already, reusing %s", label, run_dir / "model")
    else:
        resume = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").glob("checkpoint-*"))
        log.warning("%s: training %s steps (%s, alpha %.2f)%s", label, config.steps, config.sampling, config.alpha,
                    " (resuming)" if resume else "")
        started = time.perf_counter()
        train(model, train_source, config, out=run_dir, resume=resume, verbose=verbose)
        log.warning("%s: trained in %.0f s", label, time.perf_counter() - started)
    return {"model": str(run_dir / "model"), **training_record(run_dir)}
