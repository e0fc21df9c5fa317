"""What the on-disk format shares between the store and the faiss structures."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["CHUNK", "json_text"]

CHUNK = 4096
"""Documents per write (and per faiss add)."""


def json_text(value: dict[str, Any]) -> str:
    """The on-disk form of ``pt_meta.json`` and ``ann/*/info.json``."""
    return json.dumps(value, indent=2, sort_keys=True) + "\n"
