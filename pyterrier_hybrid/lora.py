"""LoRA adapters for training (``TrainConfig(lora_rank=...)``), with ``peft`` injected in place.

The adapter goes into the encoder's transformer (``peft.inject_adapter_in_model``): every linear
layer of the encoder blocks (query, key, value, attention output, intermediate, output) gets
``W + (alpha / r) B A`` with ``alpha = 2 r`` and dropout 0.1 on the adapter's input (the
sentence-transformers PEFT example's settings); everything else is frozen. Checkpoints hold base
and adapter weights (so a run resumes exactly); the finished model is merged into plain weights
(``out/model`` loads like any model) and the adapter alone is saved beside it (``out/adapter``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .fs import atomic_dir, public_mode

__all__ = ["ADAPTER_CONFIG", "ADAPTER_WEIGHTS", "LORA_DROPOUT", "LORA_TARGETS", "add_lora", "has_lora",
           "load_lora_checkpoint", "lora_settings", "merge_lora", "save_adapter"]

#: The encoder blocks' linear layers (BERT / XLM-R names); the pooler and the embeddings are left out.
LORA_TARGETS = r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)$"
LORA_DROPOUT = 0.1
ADAPTER_WEIGHTS = "adapter.safetensors"
ADAPTER_CONFIG = "adapter.json"


def _peft() -> Any:
    try:
        import peft
    except ImportError as e:
        raise ImportError("LoRA training (lora_rank) needs the peft package: pip install 'pyterrier-hybrid[lora]'") from e
    return peft


def _transformer(st_model: Any) -> Any:
    first = st_model[0]
    if not hasattr(first, "auto_model"):
        raise ValueError(f"LoRA needs a model whose first module is a transformer, got {type(first).__name__}")
    return first.auto_model


def lora_settings(rank: int) -> dict[str, Any]:
    """The adapter of rank ``rank`` as ``peft.LoraConfig`` keywords (alpha ``2 r``): what is injected and recorded."""
    return {"r": rank, "lora_alpha": 2 * rank, "lora_dropout": LORA_DROPOUT, "target_modules": LORA_TARGETS}


def add_lora(st_model: Any, rank: int) -> int:
    """Freeze ``st_model`` and inject a rank-``rank`` LoRA adapter; returns its parameter count."""
    peft = _peft()
    auto = _transformer(st_model)
    for p in st_model.parameters():
        p.requires_grad_(False)
    config = peft.LoraConfig(**lora_settings(rank))
    try:
        peft.inject_adapter_in_model(config, auto)
    except ValueError as e:  # no target matched: another architecture
        raise ValueError(f"LoRA found no encoder layer to adapt in {type(auto).__name__} ({e})") from e
    return sum(p.numel() for n, p in auto.named_parameters() if "lora_" in n)


def has_lora(st_model: Any) -> bool:
    """Whether ``st_model`` carries an (unmerged) LoRA adapter."""
    return any("lora_" in n for n, _ in st_model.named_parameters())


def _adapter_state(st_model: Any) -> dict[str, Any]:
    return {n: p.detach().cpu().contiguous() for n, p in _transformer(st_model).state_dict().items() if "lora_" in n}


def save_adapter(st_model: Any, out: str | os.PathLike, *, rank: int) -> Path:
    """The adapter alone (``adapter.safetensors``, fp32, and ``adapter.json``), written atomically."""
    from safetensors.torch import save_file

    state = _adapter_state(st_model)
    with atomic_dir(out, replace=True) as tmp:
        save_file(state, str(Path(tmp) / ADAPTER_WEIGHTS))
        public_mode(Path(tmp) / ADAPTER_WEIGHTS)  # safetensors writes through a 0600 temp file
        (Path(tmp) / ADAPTER_CONFIG).write_text(json.dumps({
            "format": "pyterrier-hybrid LoRA (peft LoraLayer names, adapter 'default')", **lora_settings(rank),
            "parameters": int(sum(t.numel() for t in state.values()))}, indent=2) + "\n")
    return Path(out)


def merge_lora(st_model: Any) -> Any:
    """Fold every adapter into its base layer and remove it (in place): plain weights again."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    auto = _transformer(st_model)
    for name, module in list(auto.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            setattr(auto.get_submodule(parent_name) if parent_name else auto, child, module.get_base_layer())
    if hasattr(auto, "peft_config"):
        del auto.peft_config
    for p in st_model.parameters():
        p.requires_grad_(True)
    return st_model


def load_lora_checkpoint(st_model: Any, checkpoint: str | os.PathLike) -> None:
    """Load a training checkpoint of a LoRA run (base and adapter weights) into ``st_model``."""
    from safetensors.torch import load_file

    path = Path(checkpoint) / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint} holds no model.safetensors: not a complete checkpoint of a LoRA run")
    _transformer(st_model).load_state_dict(load_file(str(path)), strict=True)
