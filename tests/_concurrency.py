"""Shared by the multi-process stress tests (tests/test_fs.py, tests/test_reliability.py)."""

from __future__ import annotations

from typing import Any


def run_writers_with_reader(reader: Any, writers: list[Any], done: Any, *, timeout: float = 120) -> None:
    """Start ``reader`` and ``writers`` (processes), wait for the writers, then set ``done`` so the
    reader finishes (the caller collects its results and joins it)."""
    reader.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout)
    done.set()
