"""A training run's directory: one writer at a time (a lock held while training), never the model
being trained (or a directory inside it), and what a new or resumed run finds there (the checkpoint
to resume from, a finished run, options changed on resume)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .fs import ensure_writable_dir, locked, read_json
from .train_config import TrainConfig, describe_differences
from .train_log import last_checkpoint, truncate_log

__all__ = ["CONFIG_NAME", "LOG_NAME", "check_out", "is_main_process", "mix_budget", "prepare_run_dir", "run_lock"]

logger = logging.getLogger(__name__)

LOG_NAME = "training_log.jsonl"
CONFIG_NAME = "train_config.json"


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """One writer per run directory (``out/.training.lock``, held while training); a second gets an error."""
    if int(os.environ.get("RANK", "0")) != 0:  # the ranks of one DDP run share the directory; rank 0 holds the lock
        yield
        return
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(locked(out / "training", wait=False))
        except BlockingIOError as e:
            raise ValueError(f"another process is training into {out} (it holds {out / '.training.lock'}): wait "
                             f"for it to finish, or choose another output directory") from e
        yield


def check_out(out: Path, model: Any) -> None:
    """``out`` can take a run: a writable directory (created), neither the model to train nor inside it."""
    if isinstance(model, (str, os.PathLike)) and Path(model).expanduser().is_dir():
        src, dst = Path(model).expanduser().resolve(), out.resolve()
        if src == dst or src in dst.parents:
            raise ValueError(f"the model to train is {src}, and --out {out} would write into it: copy the model "
                             f"elsewhere or choose another --out")
    ensure_writable_dir(out)


def mix_budget(out: Path, cfg: TrainConfig) -> int | None:
    """The budget of the exact batch mix: the run's first ``steps`` when resuming a run (an
    extended run keeps its schedule; the added steps draw their kind at random), else ``steps``."""
    path = out / CONFIG_NAME
    if not path.is_file():
        return cfg.steps
    recorded = read_json(path)
    batches = recorded.get("data", {}).get("batches") or {}
    return batches.get("budget") or recorded.get("options", {}).get("steps") or cfg.steps


def prepare_run_dir(out: Path, cfg: TrainConfig, steps: int, resume: bool, allow_changes: bool,
                    model: Any) -> tuple[str | None, dict | None, dict]:
    """Check ``out`` (created by :func:`check_out`). Returns the checkpoint to resume from
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
        if is_main_process():
            truncate_log(log_path, int(state["global_step"]))
    elif log_path.exists() and is_main_process():
        log_path.unlink()
    return (last if resume else None), None, (changed if resume and last is not None else {})


def is_main_process() -> bool:
    """Whether this process writes the run's files (rank 0 of a distributed run, or the only one)."""
    return int(os.environ.get("RANK", "0")) == 0

