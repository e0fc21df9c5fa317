"""The training step log (``training_log.jsonl``, strict JSON: a non-finite number is ``null``): one
line per optimizer step with the batch's kind and languages, validation losses, and a stop when the
training or validation loss is NaN / infinite. Checkpoints: which are complete, which is good."""

from __future__ import annotations

import json
import logging
import math
import re
import time
from pathlib import Path

from transformers import TrainerCallback

from .fs import atomic_write_text
from .sampler import SamplerFactory

__all__ = ["StepLogCallback", "TrainingDivergedError", "last_checkpoint", "last_good_checkpoint", "truncate_log"]

log = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
#: Written last by the HF trainer when it saves a checkpoint: its presence marks a complete one.
COMPLETE_MARKER = "trainer_state.json"


class TrainingDivergedError(RuntimeError):
    """The training loss became NaN or infinite; no checkpoint was saved after that step."""

    def __init__(self, step: int, loss: float, last_checkpoint: str | None, *, what: str = "loss"):
        self.step, self.loss, self.last_checkpoint = step, loss, last_checkpoint
        where = (f"the last good checkpoint is {last_checkpoint} (resume from it with a lower learning rate "
                 f"or a higher temperature)") if last_checkpoint else "no good checkpoint had been saved"
        super().__init__(f"training diverged: {what} is {loss} at step {step}; {where}")


def _checkpoints(ckpt_dir: Path) -> list[Path]:
    """``checkpoint-N`` directories, newest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def last_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest complete ``checkpoint-N`` under ``ckpt_dir`` (None if there is none).

    A checkpoint without ``trainer_state.json`` was being written when the process died (SIGKILL,
    out of memory): it is renamed ``incomplete-checkpoint-N`` (the trainer never reads it again)
    with a warning, and the previous complete one is returned."""
    for path in _checkpoints(ckpt_dir):
        if (path / COMPLETE_MARKER).is_file():
            return str(path)
        aside = path.with_name(f"incomplete-{path.name}")  # outside the trainer's checkpoint-* rotation
        if aside.exists():
            aside = path.with_name(f"incomplete-{path.name}-{int(time.time())}")
        path.rename(aside)
        log.warning("%s is incomplete (no %s: the process stopped while writing it); moved aside to %s", path,
                    COMPLETE_MARKER, aside.name)
    return None


def _encodes_finite(checkpoint: Path) -> bool:
    import torch
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(checkpoint), device="cpu", local_files_only=True)
        with torch.inference_mode():
            vecs = model.encode(["query: a probe question", "passage: a probe passage"], convert_to_tensor=True)
        return bool(torch.isfinite(vecs).all()) and all(bool(torch.isfinite(p).all()) for p in model.parameters())
    except Exception:  # unreadable: not good either
        return False


def last_good_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest complete checkpoint whose weights are finite and encode finite vectors."""
    last_checkpoint(ckpt_dir)  # moves incomplete ones aside
    for path in _checkpoints(ckpt_dir):
        if (path / COMPLETE_MARKER).is_file() and _encodes_finite(path):
            return str(path)
    return None


def _finite_or_none(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


class StepLogCallback(TrainerCallback):
    """Writes one JSON line per optimizer step and stops on a NaN / infinite loss."""

    def __init__(self, log_path: Path, factory: SamplerFactory, ckpt_dir: Path):
        self.log_path, self.factory, self.ckpt_dir = log_path, factory, ckpt_dir
        self.steps_per_epoch: int | None = None
        self.t0 = time.perf_counter()

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        sampler = self.factory.last_train_sampler
        world = max(1, args.world_size)
        self.steps_per_epoch = len(sampler) // world if sampler is not None else None
        # a resumed run goes on counting from the seconds logged at its checkpoint's step
        self.t0 = time.perf_counter() - (_seconds_at(self.log_path, state.global_step) if state.global_step else 0.0)

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
        if logs and "eval_loss" in logs:  # evaluated before the step's checkpoint is saved
            value = float(logs["eval_loss"])
            line = {"step": state.global_step, "eval_loss": _finite_or_none(value)}
            self._finish(state, line, value, "the validation loss")
            return
        if not logs or "loss" not in logs:
            return
        step, loss = state.global_step, float(logs["loss"])
        line = {"step": step, "loss": _finite_or_none(loss), **self._describe(step, max(1, args.world_size)),
                "lr": logs.get("learning_rate"), "seconds": round(time.perf_counter() - self.t0, 3)}
        self._finish(state, line, loss, "loss")

    def _finish(self, state, line: dict, value: float, what: str) -> None:
        """Write the line; on a non-finite value mark it and stop (before any checkpoint of this step)."""
        if not math.isfinite(value):
            line["diverged"] = True
        if state.is_world_process_zero:
            self._write(line)
        if not math.isfinite(value):
            raise TrainingDivergedError(state.global_step, value, last_good_checkpoint(self.ckpt_dir), what=what)

    def _write(self, line: dict) -> None:
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line, allow_nan=False) + "\n")


def _seconds_at(log_path: Path, step: int) -> float:
    """The ``seconds`` of the last step line up to ``step`` in the log (0 if there is none)."""
    seconds = 0.0
    if log_path.exists():
        for line in log_path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if entry.get("step", 0) <= step and isinstance(entry.get("seconds"), (int, float)):
                seconds = float(entry["seconds"])
    return seconds


def truncate_log(log_path: Path, step: int) -> None:
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
