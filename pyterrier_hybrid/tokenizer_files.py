"""A saved model's tokenizer files, completed so that loading them is cheap.

transformers 5 writes ``tokenizer_config.json`` without ``added_tokens_decoder``; every load of such
a tokenizer then parses the whole ``tokenizer.json`` in Python (17 MB for XLM-R's 250k-token vocabulary,
about 1-2 s) only to read its added tokens, before the Rust tokenizer parses the file again. Writing
those tokens into ``tokenizer_config.json`` (the same entries, keyed by id) skips that pass and
gives the same tokenizer. Every model this package saves goes through :func:`complete_tokenizer_config`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["complete_tokenizer_config"]


def complete_tokenizer_config(model_dir: str | os.PathLike) -> list[Path]:
    """Add ``added_tokens_decoder`` (from ``tokenizer.json``) to each ``tokenizer_config.json`` of a
    saved model (its root and module folders) that lacks it. Returns the files changed. Call it on a
    directory being built (it rewrites files in place)."""
    changed = []
    root = Path(model_dir)
    for config_path in [root / "tokenizer_config.json", *root.glob("*/tokenizer_config.json")]:
        tokenizer_path = config_path.with_name("tokenizer.json")
        if not (config_path.is_file() and tokenizer_path.is_file()):
            continue
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if "added_tokens_decoder" in config:
            continue
        added = json.loads(tokenizer_path.read_text(encoding="utf-8")).get("added_tokens", [])
        config["added_tokens_decoder"] = {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in added}
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        changed.append(config_path)
    return changed
