"""Reading JSONL files (corpora, training examples): one JSON object per line, blank lines skipped,
``.gz`` files read compressed; a bad line is an error naming the file, the line and what was expected."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["read_jsonl"]

#: JSON's names of the values json.loads returns, for errors.
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def read_jsonl(path: str | os.PathLike, *, expected: str = "a JSON object",
               error: type[ValueError] = ValueError) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` per non-blank line of ``path`` (1-based; callers name a line in their
    own errors as ``<path>:<line number>``). A line that is not UTF-8, not JSON or not a JSON object
    raises ``error`` naming the file, the line and ``expected`` (what each line should hold)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as lines:
        for number, raw in enumerate(lines, 1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise error(f"{where}: not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); JSONL files "
                            f"must be UTF-8") from e
            if not line.strip():
                continue
            try:
                obj = json.loads(line.rstrip("\r\n"))  # so a column is one of this line
            except json.JSONDecodeError as e:
                raise error(f"{where}: not valid JSON ({e.msg} at column {e.colno}); expected {expected}") from e
            if not isinstance(obj, dict):
                raise error(f"{where}: expected {expected}, got a JSON {_JSON_TYPES.get(type(obj), 'value')}")
            yield number, obj
