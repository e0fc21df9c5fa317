"""Hybrid batch training (arXiv 2408.10536) of one shared multilingual encoder.

InfoNCE (``MultipleNegativesRankingLoss``, cosine similarity, scale ``1 / temperature``, in-batch
and hard negatives) over batches from :class:`~pyterrier_hybrid.sampler.HybridBatchSampler`:
monolingual with probability ``alpha``, cross-lingual otherwise. Built on
``SentenceTransformerTrainer``: HF checkpoints under ``out/checkpoints``, exact resume,
best checkpoint by held-out validation loss (or the last, ``keep="last"``), final model in
``out/model``, one log line per step in ``out/training_log.jsonl``. See ``docs/training.md``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator
from transformers import TrainerCallback

from ._callable import make_module_callable
from .cpu import cpu_record
from .fs import atomic_dir, atomic_write_text
from .models import load_model, model_fingerprint, resolve_prompts
from .sampler import HybridBatchSampler, SamplerFactory, TrainingViews, build_views, validation_batches
from .train_data import describe_source, load_source, split_validation

__all__ = ["KEEP", "PRECISIONS", "SAMPLINGS", "TrainResult", "TrainingDivergedError", "kept_checkpoint", "resolve_alpha",
           "resolve_precision", "train"]

logger = logging.getLogger(__name__)

#: Sampling names and their alpha (``hybrid`` takes ``alpha=``).
SAMPLINGS = {"hybrid": None, "x-x-mono": 1.0, "x-y": 0.0}
#: Which checkpoint becomes ``out/model``: the lowest validation loss, or the last step.
KEEP = ("best", "last")
#: Training arithmetic: ``auto`` is bf16 mixed precision where the CPU computes bf16 natively (AMX or
#: AVX512-bf16), fp32 elsewhere. Master weights and optimizer state stay fp32 either way.
PRECISIONS = ("auto", "fp32", "bf16")
#: AdamW implementations (transformers ``optim`` names); the fused one is one kernel per parameter group.
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused")
LOG_NAME = "training_log.jsonl"
CONFIG_NAME = "train_config.json"


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite; no checkpoint was saved after that step."""

    def __init__(self, step: int, loss: float, last_checkpoint: str | None):
        self.step, self.loss, self.last_checkpoint = step, loss, last_checkpoint
        where = (f"the last good checkpoint is {last_checkpoint} (resume from it with a lower learning rate "
                 f"or a higher temperature)") if last_checkpoint else "no checkpoint had been saved yet"
        super().__init__(f"training diverged: loss is {loss} at step {step}; {where}")


def resolve_alpha(sampling: str, alpha: float | None = 0.5) -> float:
    """The mono-batch probability of a sampling name (``x-x-mono`` 1, ``x-y`` 0, ``hybrid`` alpha)."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"unknown sampling {sampling!r}; valid: {', '.join(SAMPLINGS)}")
    value = SAMPLINGS[sampling] if SAMPLINGS[sampling] is not None else alpha
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"alpha must be in [0, 1] (1 = X-X-mono, 0 = X-Y), got {value}")
    return float(value)


def resolve_precision(precision: str = "auto") -> str:
    """``fp32`` or ``bf16``: ``auto`` follows the CPU (:func:`pyterrier_hybrid.cpu.native_bf16`); an
    explicit ``bf16`` without native bf16 (or on a GPU without it) runs, with a warning that it is slow."""
    from .cpu import native_bf16

    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if _cuda():
        import torch

        native = torch.cuda.is_bf16_supported()
    else:
        native = native_bf16()
    if precision == "auto":
        return "bf16" if native else "fp32"
    if precision == "bf16" and not native:
        import warnings

        warnings.warn("precision 'bf16' without native bf16 (no AMX, no AVX512-bf16): torch emulates it and trains "
                      "slower than fp32; use precision 'auto' or 'fp32'", stacklevel=3)
    return precision


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


def _last_checkpoint(ckpt_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None


class _StepLogCallback(TrainerCallback):
    """Writes one JSON line per optimizer step and stops on a NaN / infinite loss."""

    def __init__(self, log_path: Path, factory: SamplerFactory, ckpt_dir: Path):
        self.log_path, self.factory, self.ckpt_dir = log_path, factory, ckpt_dir
        self.steps_per_epoch: int | None = None
        self.t0 = time.perf_counter()

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        sampler = self.factory.last_train_sampler
        world = max(1, args.world_size)
        self.steps_per_epoch = len(sampler) // world if sampler is not None else None
        self.t0 = time.perf_counter()

    def _describe(self, step: int, world: int) -> dict:
        sampler = self.factory.last_train_sampler
        if sampler is None or not self.steps_per_epoch:
            return {}
        epoch, local = divmod(step - 1, self.steps_per_epoch)
        plan = sampler.plan(epoch)
        infos = [plan[local * world + r] for r in range(world) if local * world + r < len(plan)]
        first = infos[0]
        out = {"kind": first.kind, "query_langs": list(first.query_langs), "passage_langs": list(first.passage_langs),
               "epoch": epoch}
        if world > 1:
            out["ranks"] = [{"kind": b.kind, "query_langs": list(b.query_langs),
                             "passage_langs": list(b.passage_langs)} for b in infos]
        return out

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs or "eval_loss" in logs:
            if logs and "eval_loss" in logs and state.is_world_process_zero:
                self._write({"step": state.global_step, "eval_loss": logs["eval_loss"]})
            return
        step, loss = state.global_step, float(logs["loss"])
        line = {"step": step, "loss": loss if math.isfinite(loss) else None, **self._describe(step, max(1, args.world_size)),
                "lr": logs.get("learning_rate"), "seconds": round(time.perf_counter() - self.t0, 3)}
        if not math.isfinite(loss):
            line["diverged"] = True
        if state.is_world_process_zero:
            self._write(line)
        if not math.isfinite(loss):
            raise TrainingDivergedError(step, loss, _last_checkpoint(self.ckpt_dir))

    def _write(self, line: dict) -> None:
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


def _truncate_log(log_path: Path, step: int) -> None:
    """Keep the step lines up to ``step`` (and eval lines up to it): the state of a checkpoint."""
    if not log_path.exists():
        return
    keep = []
    for line in log_path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue
    atomic_write_text(log_path, "".join(s + "\n" for s in keep))


def _versions() -> dict[str, str]:
    import sentence_transformers
    import torch
    import transformers

    from . import __version__

    return {"pyterrier_hybrid": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__}


def _freeze_embeddings(model: Any) -> int:
    emb = model[0].auto_model.get_input_embeddings()
    n = 0
    for p in emb.parameters():
        p.requires_grad_(False)
        n += p.numel()
    return n


def kept_checkpoint(ckpt_dir: str | os.PathLike, keep: str, best: str | None, global_step: int) -> str:
    """The checkpoint ``out/model`` holds: the best by validation loss with ``keep="best"`` (when
    validation picked one), else the last step's."""
    return best if (keep == "best" and best) else str(Path(ckpt_dir) / f"checkpoint-{global_step}")


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def train(
    model: Any,
    source: Any,
    *,
    sampling: str = "hybrid",
    alpha: float = 0.5,
    steps: int | None = None,
    batch_size: int = 32,
    lr: float = 3e-5,
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.1,
    temperature: float = 0.05,
    num_negatives: int = 1,
    max_query_length: int = 64,
    max_passage_length: int = 256,
    prompts: str | dict[str, str] | None = None,
    freeze_embeddings: bool = False,
    cached_loss: bool = False,
    mini_batch_size: int = 32,
    save_steps: int | None = None,
    eval_fraction: float = 0.1,
    keep: str = "best",
    precision: str = "auto",
    optimizer: str = "adamw_torch",
    out: str | os.PathLike = "runs/train",
    resume: bool = False,
    seed: int = 0,
    languages: Sequence[str] | None = None,
    max_examples: int | None = None,
    callbacks: Sequence[TrainerCallback] = (),
    verbose: bool = True,
) -> TrainResult:
    """Fine-tune ``model`` (a spec for :func:`load_model` or a SentenceTransformer) on ``source``.

    ``source``: ``mlqa-r``, ``xquad-r``, ``irds:TEMPLATE`` (e.g. ``irds:mmarco/v2/{lang}/train``,
    needs ``languages``), a ``.jsonl`` file, or a list of ParallelExample. ``sampling``:
    ``x-x-mono`` (alpha 1), ``x-y`` (alpha 0) or ``hybrid`` (``alpha``). ``steps``: optimizer steps
    (default one epoch, ``ceil(n_train_examples / batch_size)``). ``save_steps``: checkpoint (and
    validation) interval, default ``steps``. ``eval_fraction`` of the examples (by pid) is held out
    for the validation loss that picks the best checkpoint (0: no validation, the last step is
    kept). ``keep``: ``best`` (lowest validation loss) or ``last`` (the last step; the validation
    loss is still logged). ``precision``: ``auto`` (bf16 mixed precision where the CPU has native
    bf16, else fp32), ``fp32`` or ``bf16``; recorded, and a resumed run keeps its precision.
    ``optimizer``: a transformers ``optim`` name (``adamw_torch``, ``adamw_torch_fused``).
    ``callbacks``: extra ``transformers.TrainerCallback`` objects (e.g. timing, logging services).
    ``prompts``: default the model's stored prompts (query prompt on ``anchor``, document
    prompt on positives and negatives). Returns a :class:`TrainResult`; raises
    :class:`TrainingDivergedError` on a NaN / infinite loss.
    """
    alpha = resolve_alpha(sampling, alpha)
    for name, value in (("batch_size", batch_size), ("max_query_length", max_query_length),
                        ("max_passage_length", max_passage_length), ("mini_batch_size", mini_batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    if save_steps is not None and save_steps < 1:
        raise ValueError(f"save_steps must be a positive integer, got {save_steps}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {', '.join(KEEP)}, got {keep!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
    precision_requested, precision = precision, resolve_precision(precision)
    prompts = resolve_prompts(prompts)

    # ---- data (all checks before the model is loaded)
    examples = load_source(source, languages=languages, max_examples=max_examples)
    if not examples:
        raise ValueError(f"the training source {describe_source(source)} has no examples"
                         + (f" in {', '.join(languages)}" if languages else ""))
    train_ex, val_ex = split_validation(examples, eval_fraction, seed)
    views = build_views(train_ex, num_negatives=num_negatives, seed=seed, cross=alpha < 1)
    sampler_partial = functools.partial(HybridBatchSampler, views=views, alpha=alpha)
    probe = sampler_partial(views.dataset, batch_size=batch_size, drop_last=False, seed=seed)  # validates
    steps_per_epoch = len(probe)
    steps = steps or steps_per_epoch
    save_steps = min(save_steps or steps, steps)
    val_views: TrainingViews | None = None
    eval_batches: list[list[int]] = []
    if val_ex:
        val_views = build_views(val_ex, num_negatives=num_negatives, seed=seed, cross=alpha < 1)
        eval_batches = validation_batches(val_views, batch_size, alpha=alpha, seed=seed)

    # ---- output directory, resume
    out = Path(out)
    ckpt_dir, model_dir, log_path = out / "checkpoints", out / "model", out / LOG_NAME
    resume_from = _last_checkpoint(ckpt_dir) if resume else None
    if resume and resume_from is None:
        logger.warning("resume=True but %s has no checkpoint: starting from scratch", ckpt_dir)
    if not resume and _last_checkpoint(ckpt_dir) is not None:
        raise ValueError(f"{out} already holds checkpoints from an earlier run; pass resume=True (CLI --resume) to "
                         f"continue it, or choose another output directory")
    out.mkdir(parents=True, exist_ok=True)
    if resume_from is not None:
        state = json.loads((Path(resume_from) / "trainer_state.json").read_text())
        if _is_main_process():
            _truncate_log(log_path, int(state["global_step"]))
        old = json.loads((out / CONFIG_NAME).read_text()) if (out / CONFIG_NAME).exists() else {}
        was = old.get("options", {}).get("precision", "fp32")  # runs before the option were fp32
        if was != precision:
            raise ValueError(f"{out} was trained in {was}; resuming it in {precision} would mix precisions in one "
                             f"run: pass precision={was!r} (CLI --precision {was}) or start a new run")
        now = _jsonable(dict(sampling=sampling, alpha=alpha, batch_size=batch_size, seed=seed, languages=languages,
                             num_negatives=num_negatives, source=describe_source(source)))
        changed = [k for k, v in now.items() if k in old.get("options", {}) and old["options"][k] != v]
        if changed:
            logger.warning("resuming %s with different %s than the first run", out, ", ".join(changed))
    elif log_path.exists() and _is_main_process():
        log_path.unlink()

    # ---- model, loss
    if isinstance(model, (str, os.PathLike)) or model is None:
        model_spec = None if model is None else str(model)
        st_model = load_model(model, prompts=prompts)
    else:
        model_spec = getattr(model, "model_card_data", None) and getattr(model.model_card_data, "base_model", None)
        st_model = model
        if prompts is not None:
            st_model.prompts = prompts
    st_prompts = dict(getattr(st_model, "prompts", {}) or {})
    q_prompt, d_prompt = st_prompts.get("query"), st_prompts.get("document")
    neg_cols = [c for c in views.dataset.column_names if c.startswith("negative_")]
    column_prompts = {k: v for k, v in {"anchor": q_prompt, "positive": d_prompt,
                                         **{c: d_prompt for c in neg_cols}}.items() if v}
    frozen = _freeze_embeddings(st_model) if freeze_embeddings else 0
    fingerprint = model_fingerprint(st_model)

    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    if cached_loss:
        loss = CachedMultipleNegativesRankingLoss(st_model, scale=1.0 / temperature, mini_batch_size=mini_batch_size,
                                                  show_progress_bar=False)
    else:
        loss = MultipleNegativesRankingLoss(st_model, scale=1.0 / temperature)

    config = {
        "method": "hybrid batch training (arXiv 2408.10536)",
        "source": describe_source(source),
        "model": {"spec": model_spec, "fingerprint": fingerprint, "prompts": st_prompts,
                  "frozen_parameters": frozen,
                  "parameters": sum(p.numel() for p in st_model.parameters())},
        "options": _jsonable(dict(
            sampling=sampling, alpha=alpha, steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
            warmup_ratio=warmup_ratio, temperature=temperature, num_negatives=num_negatives,
            max_query_length=max_query_length, max_passage_length=max_passage_length, prompts=prompts,
            freeze_embeddings=freeze_embeddings, cached_loss=cached_loss, mini_batch_size=mini_batch_size,
            save_steps=save_steps, eval_fraction=eval_fraction, keep=keep, seed=seed, languages=languages,
            max_examples=max_examples, source=describe_source(source), optimizer=optimizer,
            lr_scheduler="linear", precision=precision, precision_requested=precision_requested)),
        "data": {"examples": len(examples), "train_examples": len(train_ex), "validation_examples": len(val_ex),
                 "train_rows": len(views), "validation_batches": len(eval_batches),
                 "languages": list(probe.languages), "steps_per_epoch": steps_per_epoch,
                 "validation_pids": [ex.pid for ex in val_ex]},
        "versions": _versions(),
        "cpu": cpu_record(),
        "resumed_from": resume_from,
    }
    if _is_main_process():
        atomic_write_text(out / CONFIG_NAME, json.dumps(config, indent=2, ensure_ascii=False) + "\n")

    # ---- trainer
    eval_dataset = val_views.dataset if (val_views is not None and eval_batches) else None
    factory = SamplerFactory(views.dataset, sampler_partial, eval_dataset, eval_batches)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(ckpt_dir),
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=len(eval_batches[0]) if eval_batches else batch_size,
        learning_rate=lr,
        weight_decay=weight_decay,
        warmup_steps=float(warmup_ratio) if warmup_ratio < 1 else int(warmup_ratio),
        lr_scheduler_type="linear",
        optim=optimizer,
        bf16=precision == "bf16",
        logging_steps=1,
        logging_nan_inf_filter=False,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=2,  # the best and the latest (resume); each holds ~3x the model in optimizer state
        eval_strategy="steps" if eval_dataset is not None else "no",
        eval_steps=save_steps if eval_dataset is not None else None,
        load_best_model_at_end=eval_dataset is not None and keep == "best",
        metric_for_best_model="eval_loss" if eval_dataset is not None else None,
        greater_is_better=False if eval_dataset is not None else None,
        seed=seed,
        data_seed=seed,
        report_to="none",
        disable_tqdm=not verbose,
        batch_sampler=factory,
        prompts=column_prompts or None,
        dataloader_drop_last=False,
        dataloader_pin_memory=_cuda(),
        gradient_accumulation_steps=1,
        ddp_backend="gloo" if (not _cuda() and int(os.environ.get("WORLD_SIZE", "1")) > 1) else None,
        use_cpu=not _cuda(),
    )
    # never longer than the model can embed (its max_seq_length, e.g. 512 positions for BERT-like models)
    model_max = getattr(st_model, "max_seq_length", None) or max(max_query_length, max_passage_length)
    q_len, p_len = min(max_query_length, model_max), min(max_passage_length, model_max)
    collator = _LengthCollator(
        preprocess_fn=st_model.preprocess, prompts=args.prompts,
        lengths={"anchor": q_len, "positive": p_len, **{c: p_len for c in neg_cols}},
    )
    callback = _StepLogCallback(log_path, factory, ckpt_dir)
    trainer = SentenceTransformerTrainer(
        model=st_model, args=args, train_dataset=views.dataset, eval_dataset=eval_dataset, loss=loss,
        data_collator=collator, callbacks=[callback, *callbacks],
    )
    if not verbose:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    trainer.train(resume_from_checkpoint=resume_from)

    # ---- final model (the best checkpoint by validation loss when there is validation and keep="best")
    st_model = trainer.model
    best = trainer.state.best_model_checkpoint
    kept = kept_checkpoint(ckpt_dir, keep, best, trainer.state.global_step)
    if _is_main_process():
        with atomic_dir(model_dir, replace=True) as tmp:  # the old model stays until the new one is in place
            st_model.save(str(tmp))
        config["result"] = {"global_step": trainer.state.global_step,
                            "best_checkpoint": best, "best_eval_loss": trainer.state.best_metric,
                            "kept_checkpoint": kept}
        atomic_write_text(out / CONFIG_NAME, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    st_model.eval()
    return TrainResult(st_model, out, model_dir, log_path, trainer.state.global_step, best, config, kept)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


make_module_callable(__name__, train)
