"""Hybrid batch training (arXiv 2408.10536) of one shared multilingual encoder.

InfoNCE (``MultipleNegativesRankingLoss``, cosine similarity, scale ``1 / temperature``, in-batch
and hard negatives) over batches from :class:`~pyterrier_hybrid.sampler.HybridBatchSampler`:
monolingual with probability ``alpha``, cross-lingual otherwise; with ``num_positives > 1`` or
``translation_weight > 0``, :class:`~pyterrier_hybrid.losses.MultiPositiveRankingLoss` instead. Built on
``SentenceTransformerTrainer``: HF checkpoints under ``out/checkpoints``, exact resume,
best checkpoint by held-out validation loss (or the last, ``keep="last"``), final model in
``out/model``, one log line per step in ``out/training_log.jsonl``. Options:
:class:`~pyterrier_hybrid.train_config.TrainConfig`. See ``docs/training.md``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
from transformers import TrainerCallback

from ._version import provenance
from .artifact_meta import write_artifact_meta
from .fs import atomic_dir, atomic_write_text, read_json
from .lora import add_lora, has_lora, load_lora_checkpoint, lora_settings, merge_lora, save_adapter
from .model_card import training_card
from .models import load_model, model_fingerprint, resolve_prompts
from .run_dir import check_out, run_lock
from .sampler import SamplerFactory
from .train_config import (
    KEEP,
    PRECISIONS,
    SAMPLINGS,
    TrainConfig,
    describe_differences,
    resolve_alpha,
    resolve_precision,
)
from .train_data import describe_source
from .train_log import StepLogCallback, TrainingDivergedError, last_checkpoint, truncate_log
from .train_plan import RunData as _Data
from .train_plan import prepare_data as _prepare_data

__all__ = ["CONFIG_NAME", "KEEP", "LOG_NAME", "PRECISIONS", "SAMPLINGS", "TrainConfig", "TrainResult",
           "TrainingDivergedError", "kept_checkpoint", "resolve_alpha", "resolve_precision", "train"]

logger = logging.getLogger(__name__)

LOG_NAME = "training_log.jsonl"
CONFIG_NAME = "train_config.json"


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


class _Trainer(SentenceTransformerTrainer):
    """Resumes and restores LoRA runs from their checkpoints (base and adapter weights) in place; a
    resume applies this run's learning rate and weight decay (the checkpoint's optimizer state keeps
    the moments and the step, not the old hyper-parameters); a damaged optimizer state is an error
    naming the file."""

    def _load_from_checkpoint(self, checkpoint_path: str, *args: Any, **kwargs: Any) -> None:
        if has_lora(self.model):
            load_lora_checkpoint(self.model, checkpoint_path)
        else:
            super()._load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        if checkpoint is None or self.optimizer is None:
            return super()._load_optimizer_and_scheduler(checkpoint)
        for name in ("optimizer.pt", "scheduler.pt"):  # torch.save writes zip archives: a cut one is no zip
            path = Path(checkpoint) / name
            if path.is_file() and not zipfile.is_zipfile(path):
                raise ValueError(f"{path} is damaged (cut short: the process or the disk failed while it was "
                                 f"written); move {checkpoint} aside to resume from the checkpoint before it")
        groups = self.optimizer.param_groups
        fresh = [{"weight_decay": g.get("weight_decay"), "initial_lr": g.get("initial_lr", g.get("lr"))}
                 for g in groups]
        try:
            super()._load_optimizer_and_scheduler(checkpoint)
        except Exception as e:
            raise ValueError(f"cannot restore the optimizer state of {checkpoint} ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:200] if str(e) else ''}); move it aside to resume from "
                             f"the checkpoint before it") from e
        if len(groups) != len(fresh):
            return
        sched = self.lr_scheduler
        for g, f in zip(groups, fresh, strict=True):
            g["weight_decay"], g["initial_lr"] = f["weight_decay"], f["initial_lr"]
        if hasattr(sched, "lr_lambdas") and hasattr(sched, "base_lrs"):
            sched.base_lrs = [g["initial_lr"] for g in groups]
            for g, base, fn in zip(groups, sched.base_lrs, sched.lr_lambdas, strict=True):
                g["lr"] = base * fn(sched.last_epoch)
            sched._last_lr = [g["lr"] for g in groups]


class _LengthCollator(SentenceTransformerDataCollator):
    """Per-column max length: ``anchor`` gets the query length, the other columns the passage length."""

    def __init__(self, *args: Any, lengths: dict[str, int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lengths = lengths
        self._column: str | None = None

    def _get_task_for_column(self, column_name, column_position, router_mapping):
        self._column = column_name
        return super()._get_task_for_column(column_name, column_position, router_mapping)

    def _get_max_length_for_task(self, task):
        return self.lengths.get(self._column) or super()._get_max_length_for_task(task)


def _freeze_embeddings(model: Any) -> None:
    for p in model[0].auto_model.get_input_embeddings().parameters():
        p.requires_grad_(False)


def kept_checkpoint(ckpt_dir: str | os.PathLike, keep: str, best: str | None, global_step: int) -> str:
    """The checkpoint ``out/model`` holds: the best by validation loss with ``keep="best"`` (when
    validation picked one), else the last step's."""
    return best if (keep == "best" and best) else str(Path(ckpt_dir) / f"checkpoint-{global_step}")


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


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
    data = _prepare_data(source, cfg, budget=_mix_budget(out, cfg) if resume else cfg.steps)
    resume_from, finished, changed = _prepare_run_dir(out, cfg, data.steps, resume, allow_changes, model)
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
    if _is_main_process():
        atomic_write_text(out / CONFIG_NAME, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    trainer = _trainer(st_model, data, cfg, out, callbacks, verbose)
    trainer.train(resume_from_checkpoint=resume_from)
    return _publish(trainer, cfg, config, out)


def _mix_budget(out: Path, cfg: TrainConfig) -> int | None:
    """The budget of the exact batch mix: the run's first ``steps`` when resuming a run (an
    extended run keeps its schedule; the added steps draw their kind at random), else ``steps``."""
    path = out / CONFIG_NAME
    if not path.is_file():
        return cfg.steps
    recorded = read_json(path)
    batches = recorded.get("data", {}).get("batches") or {}
    return batches.get("budget") or recorded.get("options", {}).get("steps") or cfg.steps


def _prepare_run_dir(out: Path, cfg: TrainConfig, steps: int, resume: bool, allow_changes: bool,
                     model: Any) -> tuple[str | None, dict | None, dict]:
    """Check ``out`` (created by :func:`_check_out`). Returns the checkpoint to resume from
    (``resume``; the options must match the run's unless ``allow_changes``), the recorded config of
    a run that is already finished (then nothing is trained), and the options changed on resume."""
    ckpt_dir, log_path, model_dir = out / "checkpoints", out / LOG_NAME, out / "model"
    recorded = read_json(out / CONFIG_NAME) if (out / CONFIG_NAME).is_file() else None
    changed: dict = {}
    if isinstance(model, (str, os.PathLike)) and model_dir.exists() and Path(model).resolve() == model_dir.resolve():
        raise ValueError(f"the model to train is {model_dir}, where this run would publish its result: copy it "
                         f"elsewhere or choose another --out")
    if model_dir.exists() and recorded is None:
        raise ValueError(f"{model_dir} exists but {out} holds no training run ({CONFIG_NAME} is missing): it is not "
                         f"this run's, so it is never replaced; choose another --out")
    last = last_checkpoint(ckpt_dir)
    if not resume:
        if last is not None or (recorded and "result" in recorded):
            raise ValueError(f"{out} already holds an earlier run; pass resume=True (CLI --resume) to continue or "
                             f"check it, or choose another output directory")
    elif recorded is not None:
        before = TrainConfig.from_json(recorded.get("options", {}))
        if before.precision != cfg.precision:
            raise ValueError(f"{out} was trained in {before.precision}; resuming it in {cfg.precision} would mix "
                             f"precisions in one run: pass precision={before.precision!r} (CLI --precision "
                             f"{before.precision}) or start a new run")
        changed = before.differences(dataclasses.replace(cfg, steps=before.steps))  # more steps extend a run
        if changed and not allow_changes:
            raise ValueError(f"{out} was trained with other options ({describe_differences(changed)}); resuming "
                             f"would mix them in one run: pass the run's options, allow_changes=True (CLI "
                             f"--allow-changed-options), or start a new run")
        result = recorded.get("result") or {}
        done = result.get("global_step")
        if done is not None and done >= steps and model_dir.is_dir() and (last is None or
                                                                         last.endswith(f"checkpoint-{done}")):
            logger.warning("%s is a finished run (%d steps): nothing to train", out, done)
            return None, recorded, changed
        if done is not None and result.get("checkpoints_removed"):
            raise ValueError(f"{out} finished at step {done} and its checkpoints (optimizer state) were removed "
                             f"(keep_checkpoints=False), so it cannot be extended to {steps} steps exactly: train a "
                             f"new run with steps={steps} (keep_checkpoints=True, CLI --keep-checkpoints, keeps them "
                             f"for later extension)")
    if resume and last is None:
        logger.warning("resume=True but %s has no complete checkpoint: starting from scratch", ckpt_dir)
    if last is not None and resume:
        state = read_json(Path(last) / "trainer_state.json")
        if _is_main_process():
            truncate_log(log_path, int(state["global_step"]))
    elif log_path.exists() and _is_main_process():
        log_path.unlink()
    return (last if resume else None), None, (changed if resume and last is not None else {})


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


def _trainer(st_model: Any, data: _Data, cfg: TrainConfig, out: Path, callbacks: Sequence[TrainerCallback],
             verbose: bool) -> SentenceTransformerTrainer:
    """The sentence-transformers trainer: loss, arguments, collator, step log."""
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    if cfg.num_positives > 1 or cfg.translation_weight > 0:
        from .losses import MultiPositiveRankingLoss

        loss = MultiPositiveRankingLoss(st_model, scale=1.0 / cfg.temperature, num_positives=cfg.num_positives,
                                        num_negatives=cfg.num_negatives, translation_weight=cfg.translation_weight)
    elif cfg.cached_loss:
        loss = CachedMultipleNegativesRankingLoss(st_model, scale=1.0 / cfg.temperature,
                                                  mini_batch_size=cfg.mini_batch_size, show_progress_bar=False)
    else:
        loss = MultipleNegativesRankingLoss(st_model, scale=1.0 / cfg.temperature)
    prompts = dict(getattr(st_model, "prompts", {}) or {})
    neg_cols = [c for c in data.views.dataset.column_names if c.startswith(("negative_", "positive_"))
                or c == "translation"]  # every passage column but the first
    column_prompts = {k: v for k, v in {"anchor": prompts.get("query"), "positive": prompts.get("document"),
                                         **{c: prompts.get("document") for c in neg_cols}}.items() if v}
    eval_dataset = data.validation_views.dataset if (data.validation_views is not None and data.eval_batches) else None
    factory = SamplerFactory(data.views.dataset, data.sampler, eval_dataset, data.eval_batches)
    args = _arguments(cfg, data, out / "checkpoints", eval_dataset is not None, factory, column_prompts, verbose)
    # never longer than the model can embed (its max_seq_length, e.g. 512 positions for BERT-like models)
    model_max = getattr(st_model, "max_seq_length", None) or max(cfg.max_query_length, cfg.max_passage_length)
    q_len, p_len = min(cfg.max_query_length, model_max), min(cfg.max_passage_length, model_max)
    collator = _LengthCollator(preprocess_fn=st_model.preprocess, prompts=args.prompts,
                               lengths={"anchor": q_len, "positive": p_len, **{c: p_len for c in neg_cols}})
    step_log = StepLogCallback(out / LOG_NAME, factory, out / "checkpoints")
    trainer = _Trainer(model=st_model, args=args, train_dataset=data.views.dataset,
                                         eval_dataset=eval_dataset, loss=loss, data_collator=collator,
                                         callbacks=[step_log, *callbacks])
    if not verbose:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer


def _arguments(cfg: TrainConfig, data: _Data, ckpt_dir: Path, validate: bool, factory: SamplerFactory,
               column_prompts: dict[str, str], verbose: bool) -> SentenceTransformerTrainingArguments:
    cuda = _cuda()
    return SentenceTransformerTrainingArguments(
        output_dir=str(ckpt_dir),
        max_steps=data.steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=len(data.eval_batches[0]) if data.eval_batches else cfg.batch_size,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        warmup_steps=float(cfg.warmup_ratio) if cfg.warmup_ratio < 1 else int(cfg.warmup_ratio),
        lr_scheduler_type="linear",
        optim=cfg.optimizer,
        bf16=cfg.precision == "bf16",
        logging_steps=1,
        logging_nan_inf_filter=False,
        save_strategy="steps",
        save_steps=data.save_steps,
        save_total_limit=2,  # the best and the latest (resume); each holds ~3x the model in optimizer state
        eval_strategy="steps" if validate else "no",
        eval_steps=data.save_steps if validate else None,
        load_best_model_at_end=validate and cfg.keep == "best",
        metric_for_best_model="eval_loss" if validate else None,
        greater_is_better=False if validate else None,
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to="none",
        disable_tqdm=not verbose,
        batch_sampler=factory,
        prompts=column_prompts or None,
        dataloader_drop_last=False,
        dataloader_pin_memory=cuda,
        gradient_accumulation_steps=1,
        ddp_backend="gloo" if (not cuda and int(os.environ.get("WORLD_SIZE", "1")) > 1) else None,
        use_cpu=not cuda,
    )


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
    if _is_main_process():
        if cfg.lora_rank:
            save_adapter(st_model, out / "adapter", rank=cfg.lora_rank)
            merge_lora(st_model)
        config["result"] = {"global_step": trainer.state.global_step, "best_checkpoint": best,
                            "best_eval_loss": trainer.state.best_metric, "kept_checkpoint": kept,
                            "checkpoints_removed": not cfg.keep_checkpoints}
        with atomic_dir(out / "model", replace=True) as tmp:
            st_model.save(str(tmp))
            write_artifact_meta(tmp)  # pt.Artifact.load(out / "model") gives a DenseEncoder
            atomic_write_text(Path(tmp) / "README.md", training_card(config, run_name=out.name))
        atomic_write_text(out / CONFIG_NAME, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        if not cfg.keep_checkpoints:  # recorded first: a kill in between leaves stale checkpoints, no lost run
            shutil.rmtree(out / "checkpoints", ignore_errors=True)
    st_model.eval()
    return TrainResult(st_model, out, out / "model", out / LOG_NAME, trainer.state.global_step, best, config, kept)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
