"""Progress the user sees: labelled bars (``tqdm.auto``: widgets in notebooks, text in a terminal),
one-line notices of long first-time work, and a quiet switch that also silences the libraries'
own bars (transformers' "Loading weights", the hub's downloads).

Encoding goes through sentence-transformers, whose only bar is an unnamed "Batches" counter:
:func:`labelled` relabels it, for the calls inside the ``with`` block, as one bar that says what
is encoded with which model and counts texts (items per second), without changing how
sentence-transformers batches (so vectors are unchanged).
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterator

from tqdm.auto import tqdm

__all__ = ["LONG_WORK", "labelled", "library_bars_off", "notice", "quiet", "set_quiet"]

#: Texts from which encoding shows a bar when ``verbose`` is not given (about 10 s on 2 cores).
LONG_WORK = 1000

_QUIET = False
_label: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("pyterrier_hybrid_bar", default=None)


def set_quiet(value: bool = True) -> None:
    """No notices and no bars of ours or of transformers / huggingface_hub (the CLI's ``--quiet``)."""
    global _QUIET
    _QUIET = value
    try:
        from transformers.utils import logging as tf_logging

        (tf_logging.disable_progress_bar if value else tf_logging.enable_progress_bar)()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    try:
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

        (disable_progress_bars if value else enable_progress_bars)()
    except ImportError:  # pragma: no cover
        pass


def quiet() -> bool:
    return _QUIET


def notice(message: str) -> None:
    """One line to stderr (shown in notebooks too), unless quiet."""
    if not _QUIET:
        print(f"pyterrier-hybrid: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def library_bars_off() -> Iterator[None]:
    """transformers' own bars off inside the block (they are unnamed steps of our own work)."""
    from transformers.utils import logging as tf_logging

    was = tf_logging.is_progress_bar_enabled()
    tf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was and not _QUIET:
            tf_logging.enable_progress_bar()


@contextlib.contextmanager
def labelled(desc: str, unit: str) -> Iterator[None]:
    """sentence-transformers' "Batches" bar, inside the block, labelled ``desc`` and counting ``unit``s."""
    _install()
    token = _label.set((desc, unit))
    try:
        yield
    finally:
        _label.reset(token)


def _labelled_trange(original):
    def trange(start, stop=None, step=1, *args, **kwargs):
        label = _label.get()
        if label is None or stop is None or args:
            return original(start, *(() if stop is None else (stop,)), step, *args, **kwargs)
        return _counting(start, stop, step, label, disable=kwargs.get("disable", False) or _QUIET)

    trange._pyterrier_hybrid = True
    return trange


def _counting(start: int, stop: int, step: int, label: tuple[str, str], *, disable: bool) -> Iterator[int]:
    desc, unit = label
    with tqdm(total=stop - start, desc=desc, unit=unit, disable=disable, smoothing=0.1) as bar:
        for i in range(start, stop, step):
            yield i
            bar.update(min(step, stop - i))


def _install() -> None:
    """Wrap the ``trange`` sentence-transformers' encode loop uses (once; a no-op if it moved)."""
    try:
        from sentence_transformers.sentence_transformer import model as st_model
    except ImportError:  # pragma: no cover
        return
    current = getattr(st_model, "trange", None)
    if current is not None and not getattr(current, "_pyterrier_hybrid", False):
        st_model.trange = _labelled_trange(current)
