"""The sentence-transformers trainer of a training run: the loss, the training arguments, a collator
with per-column maximum lengths, and checkpoint loading that resumes LoRA runs in place and applies a
resumed run's learning rate and weight decay."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
from transformers import TrainerCallback

from .lora import has_lora, load_lora_checkpoint
from .run_dir import LOG_NAME
from .sampler import SamplerFactory
from .train_config import TrainConfig
from .train_log import StepLogCallback
from .train_plan import RunData

__all__ = ["build_trainer"]


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


def build_trainer(st_model: Any, data: RunData, cfg: TrainConfig, out: Path,
                  callbacks: Sequence[TrainerCallback], verbose: bool) -> SentenceTransformerTrainer:
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
    trainer = _Trainer(model=st_model, args=args, train_dataset=data.views.dataset, eval_dataset=eval_dataset,
                       loss=loss, data_collator=collator, callbacks=[step_log, *callbacks])
    if not verbose:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer


def _arguments(cfg: TrainConfig, data: RunData, ckpt_dir: Path, validate: bool, factory: SamplerFactory,
               column_prompts: dict[str, str], verbose: bool) -> SentenceTransformerTrainingArguments:
    """The training arguments of a run: steps, batch size, optimizer, precision, checkpoints, validation."""
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


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()

