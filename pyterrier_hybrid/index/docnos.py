"""The docno file of an index: an ``npids.Lookup`` (``docnos.npids``), as pyterrier-dr's FlexIndex
reads it, written by our own writer (see :func:`write_npids`) and read back whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["read_npids", "write_npids"]


def write_npids(path: Path, docnos: list[str]) -> None:
    """``docnos`` as an ``npids.Lookup`` file, as pyterrier-dr's FlexIndex reads it: one fixed-width
    forward block (utf-8, NUL-padded), then npids' inverse lookup. Checked by reading it back.

    Not npids' own builder: it picks a zero-width encoding for a block that starts with a single
    docno (a one-document corpus, or a last docno longer than the 256 before it) and then fails to
    read the file back (ZeroDivisionError), for FlexIndex's own indexer too (npids 0.1.3).
    """
    from npids.builder import InvLookupBuilder
    from npids.utils import FileManager

    encoded = []
    for docno in docnos:
        try:
            encoded.append(docno.encode("utf-8"))
        except UnicodeEncodeError as err:
            raise ValueError(f"docno {docno!r} cannot be stored: it is not valid unicode ({err.reason})") from None
    width = max([1, *map(len, encoded)])
    with FileManager(path, "a") as out:
        out.write_header(0, len(encoded), {"format": "fixedbytes", "length": width, "prefix": ""})
        out.write(np.array(encoded, dtype=f"S{width}").tobytes())
    InvLookupBuilder.build(path)
    back = read_npids(path)
    if len(back) != len(docnos):
        raise ValueError(f"{path} reads back {len(back)} docnos instead of {len(docnos)}")
    wrong = next((i for i, (a, b) in enumerate(zip(back, docnos, strict=True)) if a != b), None)
    if wrong is not None:
        raise ValueError(
            f"docno {docnos[wrong]!r} cannot be stored: docnos.npids reads it back as {back[wrong]!r} "
            "(a docno may not end with a NUL character)"
        )


def read_npids(path: Path) -> np.ndarray:
    """All docnos of an ``npids.Lookup`` file in order (read-only unicode array)."""
    from npids import Lookup

    lookup = Lookup(path)
    try:
        docnos = lookup.fwd.lookup(np.arange(len(lookup), dtype=np.int64)) if len(lookup) else np.array([], str)
    finally:
        lookup.close()
    docnos.flags.writeable = False
    return docnos
