"""A training run's directory: one writer at a time (a lock held while training), and never the
model being trained (or a directory inside it)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .fs import ensure_writable_dir, locked

__all__ = ["check_out", "run_lock"]


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
