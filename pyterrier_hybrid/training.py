"""Hybrid batch training (arXiv 2408.10536) of one shared multilingual encoder.

InfoNCE (``MultipleNegativesRankingLoss``, cosine similarity, scale ``1 / temperature``, in-batch
and hard negatives) over batches from :class:`~pyterrier_hybrid.sampler.HybridBatchSampler`:
monolingual with probability ``alpha``, cross-lingual otherwise; with ``num_positives > 1`` or
``translation_weight > 0``, :class:`~pyterrier_hybrid.losses.MultiPositiveRankingLoss` instead. Built on
``SentenceTransformerTrainer``: HF checkpoints under ``out/checkpoints``, exact resume,
best checkpoint by held-out validation loss (or the last, ``keep="last"``), final model in
``out/model``, one log line per step in ``out/training_log.jsonl``. Options:
:class:`~pyterrier_hybrid.train_config.TrainConfig`. See ``docs/training.md``. The trainer (loss,
arguments, collator, resume) is built by :mod:`.trainer`; the run directory's checks and what a
resume continues from are :mod:`.run_dir`'s.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformerTrainer
from transformers import TrainerCallback

from ._version import provenance
from .artifact_meta import save_model
from .fs import atomic_dir, atomic_write_text
from .lora import add_lora, lora_settings, merge_lora, save_adapter
from .model_card import training_card
from .models import load_model, model_fingerprint, resolve_prompts
from .run_dir import CONFIG_NAME, LOG_NAME, check_out, is_main_process, mix_budget, prepare_run_dir, run_lock
from .train_config import KEEP, PRECISIONS, SAMPLINGS, TrainConfig, resolve_alpha, resolve_precision
from .train_data import describe_source
from .train_log import TrainingDivergedError
from .train_plan import RunData as _Data
from .train_plan import prepare_data as _prepare_data
from .trainer import build_trainer

__all__ = ["CONFIG_NAME", "KEEP", "LOG_NAME", "PRECISIONS", "SAMPLINGS", "TrainConfig", "TrainResult",
           "TrainingDivergedError", "kept_checkpoint", "resolve_alpha", "resolve_precision", "train"]


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    model: Any
    out: Path
    model_dir: Path
    log_path: Path
    global_step: int
    best_checkpoint: str | None
    config: dict = field(repr=False)
    kept_checkpoint: str | None = None


def _freeze_embeddings(model: Any) -> None:
    for p in model[0].auto_model.get_input_embeddings().parameters():
        p.requires_grad_(False)


def kept_checkpoint(ckpt_dir: str | os.PathLike, keep: str, best: str | None, global_step: int) -> str:
    """The checkpoint ``out/model`` holds: the best by validation loss with ``keep="best"`` (when
    validation picked one), else the last step's."""
    return best if (keep == "best" and best) else str(Path(ckpt_dir) / f"checkpoint-{global_step}")


def train(
    model: Any,
    source: Any,
    config: TrainConfig | None = None,
    *,
    out: str | os.PathLike = "runs/train",
    resume: bool = False,
    allow_changes: bool = False,
    callbacks: Sequence[TrainerCallback] = (),
    verbose: bool = True,
    **options: Any,
) -> TrainResult:
    """Fine-tune ``model`` (a spec for :func:`load_model` or a SentenceTransformer) on ``source``.

    ``source``: ``mlqa-r``, ``xquad-r``, ``irds:TEMPLATE`` (e.g. ``irds:mmarco/v2/{lang}/train``,
    needs ``languages``), a ``.jsonl`` file, or a list of ParallelExample. How: a
    :class:`~pyterrier_hybrid.train_config.TrainConfig`, and/or its options as keywords
    (``sampling=``, ``alpha=``, ``steps=``, ``batch_size=``, ``precision=``, ...; they replace the
    config's). ``resume`` continues the last complete checkpoint in ``out`` (the run's options, unless
    ``allow_changes``; a larger ``steps`` extends it); a finished run is returned as it is.
    ``callbacks``: extra ``transformers.TrainerCallback`` objects. Returns a :class:`TrainResult`;
    raises :class:`TrainingDivergedError` on a NaN / infinite loss.
    """
    requested = TrainConfig.make(config, **options)
    cfg = requested.resolved()  # precision fixed for this machine
    out = Path(out)
    check_out(out, model)  # a file, an unwritable directory or the model itself fail before any loading
    with run_lock(out):
        return _train(model, source, cfg, requested, out, resume, allow_changes, callbacks, verbose)


def _train(model: Any, source: Any, cfg: TrainConfig, requested: TrainConfig, out: Path, resume: bool,
           allow_changes: bool, callbacks: Sequence[TrainerCallback], verbose: bool) -> TrainResult:
    data = _prepare_data(source, cfg, budget=mix_budget(out, cfg) if resume else cfg.steps)
    resume_from, finished, changed = prepare_run_dir(out, cfg, data.steps, resume, allow_changes, model)
    if finished is not None:
        return _finished_result(out, finished)
    st_model, model_spec = _load(model, cfg)
    config = _record(source, cfg, requested, data, st_model, model_spec, resume_from)  # the base's fingerprint
    config["call"] = train_call(model, source, requested, out)  # what a notebook or script ran
    if changed:  # what ran: the new options from the resume on (applied, learning rate included)
        config["changed_on_resume"] = {k: list(v) for k, v in changed.items()}
    if cfg.lora_rank:
        import transformers

        transformers.set_seed(cfg.seed)  # the adapter's initialisation is part of the seeded run
        n, lora = add_lora(st_model, cfg.lora_rank), lora_settings(cfg.lora_rank)
        config["model"].update(frozen_parameters=config["model"]["parameters"], lora={
            "rank": lora["r"], "alpha": lora["lora_alpha"], "dropout": lora["lora_dropout"],
            "targets": lora["target_modules"], "parameters": n})
    if is_main_process():
        atomic_write_text(out / CONFIG_NAME, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    trainer = build_trainer(st_model, data, cfg, out, callbacks, verbose)
    trainer.train(resume_from_checkpoint=resume_from)
    return _publish(trainer, cfg, config, out)


def _load(model: Any, cfg: TrainConfig) -> tuple[Any, str | None]:
    """The SentenceTransformer to train (prompts and frozen embeddings applied) and its spec."""
    prompts = resolve_prompts(cfg.prompts)
    if isinstance(model, (str, os.PathLike)) or model is None:
        st_model, spec = load_model(model, prompts=prompts), None if model is None else str(model)
    else:
        spec = getattr(model, "model_card_data", None) and getattr(model.model_card_data, "base_model", None)
        st_model = model
        if prompts is not None:
            st_model.prompts = prompts
    if cfg.freeze_embeddings:
        _freeze_embeddings(st_model)
    return st_model, spec


def train_call(model: Any, source: Any, config: TrainConfig, out: Path) -> str:
    """The ``train(...)`` call that reproduces a run: its options that differ from the defaults."""
    defaults, given = TrainConfig().to_json(), config.to_json()
    options = [f"{k}={v!r}" for k, v in given.items() if v != defaults[k]]

    def arg(value: Any) -> str:
        if value is None or isinstance(value, (str, os.PathLike)):
            return repr(str(value) if isinstance(value, os.PathLike) else value)
        return f"<{type(value).__name__}>"  # an in-memory model or a list of examples

    return f"train({', '.join([arg(model), arg(source), f'out={str(out)!r}', *options])})"


def _record(source: Any, cfg: TrainConfig, requested: TrainConfig, data: _Data, st_model: Any,
            model_spec: str | None, resume_from: str | None) -> dict[str, Any]:
    """The ``train_config.json`` document (``result`` is added when the run ends)."""
    prompts = dict(getattr(st_model, "prompts", {}) or {})
    frozen = sum(p.numel() for p in st_model.parameters() if not p.requires_grad)
    return {
        "method": "hybrid batch training (arXiv 2408.10536)",
        "source": describe_source(source),
        "model": {"spec": model_spec, "fingerprint": model_fingerprint(st_model), "prompts": prompts,
                  "frozen_parameters": frozen, "parameters": sum(p.numel() for p in st_model.parameters())},
        "options": {**cfg.to_json(), "steps": data.steps, "save_steps": data.save_steps,
                    "source": describe_source(source), "lr_scheduler": "linear",
                    "precision_requested": requested.precision},
        "data": {"examples": len(data.examples), "train_examples": len(data.train_examples),
                 "validation_examples": len(data.validation_examples), "train_rows": len(data.views),
                 "validation_batches": len(data.eval_batches), "languages": list(data.languages),
                 "steps_per_epoch": data.steps_per_epoch, "batches": data.batches,
                 "validation_pids": [ex.pid for ex in data.validation_examples]},
        **provenance(),
        "resumed_from": resume_from,
    }


def _finished_result(out: Path, recorded: dict[str, Any]) -> TrainResult:
    res = recorded["result"]
    return TrainResult(load_model(out / "model"), out, out / "model", out / LOG_NAME, res["global_step"],
                       res.get("best_checkpoint"), recorded, res.get("kept_checkpoint"))


def _publish(trainer: SentenceTransformerTrainer, cfg: TrainConfig, config: dict[str, Any], out: Path) -> TrainResult:
    """Save the kept model to ``out/model`` (atomically, the old one replaced only once the new one is
    complete) and record the result."""
    st_model = trainer.model
    best = trainer.state.best_model_checkpoint
    kept = kept_checkpoint(out / "checkpoints", cfg.keep, best, trainer.state.global_step)
    if is_main_process():
        if cfg.lora_rank:
            save_adapter(st_model, out / "adapter", rank=cfg.lora_rank)
            merge_lora(st_model)
        config["result"] = {"global_step": trainer.state.global_step, "best_checkpoint": best,
                            "best_eval_loss": trainer.state.best_metric, "kept_checkpoint": kept,
                            "checkpoints_removed": not cfg.keep_checkpoints}
        with atomic_dir(out / "model", replace=True) as tmp:
            save_model(st_model, tmp)  # pt.Artifact.load(out / "model") gives a DenseEncoder
            atomic_write_text(Path(tmp) / "README.md", training_card(config, run_name=out.name))
        atomic_write_text(out / CONFIG_NAME, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        if not cfg.keep_checkpoints:  # recorded first: a kill in between leaves stale checkpoints, no lost run
            shutil.rmtree(out / "checkpoints", ignore_errors=True)
    st_model.eval()
    return TrainResult(st_model, out, out / "model", out / LOG_NAME, trainer.state.global_step, best, config, kept)


