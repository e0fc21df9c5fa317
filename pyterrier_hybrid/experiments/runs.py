"""Run reuse for experiments: train a model into a run directory unless a finished run with the same
options is there (then reuse it); resume an interrupted one from its last checkpoint."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from ..fs import read_json
from ..train_config import TrainConfig, describe_differences
from ..training import CONFIG_NAME, LOG_NAME, kept_checkpoint, train

__all__ = ["finished", "train_or_reuse", "train_root", "training_record"]

log = logging.getLogger(__name__)


def train_root(out: str | Path, train_source: Any) -> Path:
    """``out/train-<source>``, the source made file-name safe."""
    slug = re.sub(r"[^A-Za-z0-9.-]+", "_", str(train_source).removeprefix("irds:")).strip("_")
    return Path(out) / f"train-{slug}"


def finished(run_dir: Path, config: TrainConfig, train_source: Any, model: Any = None) -> bool:
    """Whether ``run_dir`` holds a finished model trained from ``train_source`` with ``config``
    (precision resolved for this machine) and, given ``model`` (the base: a spec or a loaded model),
    from that base (its fingerprint); raises if it holds one trained otherwise."""
    cfg_path = run_dir / CONFIG_NAME
    if not (run_dir / "model" / "modules.json").is_file() or not cfg_path.is_file():
        return False
    recorded = read_json(cfg_path)
    if "result" not in recorded:
        return False
    diff = TrainConfig.from_json(recorded.get("options", {})).differences(config.resolved())
    source = recorded.get("options", {}).get("source", recorded.get("source"))
    if source != str(train_source):
        diff["source"] = (source, str(train_source))
    if diff:
        raise ValueError(f"{run_dir} holds a model trained with other options ({describe_differences(diff)}); "
                         f"use another --out")
    base = (recorded.get("model") or {}).get("fingerprint")
    if model is not None and base is not None and base != base_fingerprint(model, config.prompts):
        spec = (recorded.get("model") or {}).get("spec")
        raise ValueError(f"{run_dir} holds a model trained from another base model ({spec or 'a model'}, "
                         f"fingerprint {base[:12]}) than {model if isinstance(model, (str, Path)) else 'the one given'}"
                         f"; use another --out")
    return True


_BASE_FINGERPRINTS: dict[tuple, str] = {}


def base_fingerprint(model: Any, prompts: Any = None) -> str:
    """The fingerprint :func:`~pyterrier_hybrid.training.train` records for base ``model`` (a spec,
    loaded once per process, or a SentenceTransformer) with the ``prompts`` option applied."""
    from ..models import load_model, model_fingerprint, resolve_prompts

    prompts = resolve_prompts(prompts)
    if not isinstance(model, (str, os.PathLike)):
        saved = model.prompts
        try:
            if prompts is not None:
                model.prompts = prompts
            return model_fingerprint(model)
        finally:
            model.prompts = saved
    path = Path(model).expanduser()
    files = sorted(path.rglob("*.safetensors")) if path.is_dir() else []  # a changed directory is hashed again
    key = (str(model), json.dumps(prompts, sort_keys=True), *((str(f), f.stat().st_mtime_ns, f.stat().st_size)
                                                              for f in files))
    if key not in _BASE_FINGERPRINTS:
        _BASE_FINGERPRINTS[key] = model_fingerprint(load_model(model, prompts=prompts))
    return _BASE_FINGERPRINTS[key]


def training_record(run_dir: Path) -> dict[str, Any]:
    """What a finished run reports: steps, best / kept checkpoint, validation losses, seconds."""
    cfg = read_json(run_dir / CONFIG_NAME)
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
    if finished(run_dir, config, train_source, model):
        log.warning("%s: trained already, reusing %s", label, run_dir / "model")
    else:
        resume = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").glob("checkpoint-*"))
        log.warning("%s: training %s steps (%s, alpha %.2f)%s", label, config.steps, config.sampling, config.alpha,
                    " (resuming)" if resume else "")
        started = time.perf_counter()
        train(model, train_source, config, out=run_dir, resume=resume, verbose=verbose)
        log.warning("%s: trained in %.0f s", label, time.perf_counter() - started)
    return {"model": str(run_dir / "model"), **training_record(run_dir)}
