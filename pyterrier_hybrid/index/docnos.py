"""The docno file of an index: an ``npids.Lookup`` (``docnos.npids``), as pyterrier-dr's FlexIndex
reads it, written by our own writer (see :func:`write_npids`) and read back whole."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

__all__ = ["encode_docnos", "read_npids", "write_npids", "write_npids_blocks"]


def write_npids(path: Path, docnos: list[str]) -> None:
    """``docnos`` as an ``npids.Lookup`` file, as pyterrier-dr's FlexIndex reads it: one fixed-width
    forward block (utf-8, NUL-padded), then npids' inverse lookup. Checked by reading it back.

    Not npids' own builder: it picks a zero-width encoding for a block that starts with a single
    docno (a one-document corpus, or a last docno longer than the 256 before it) and then fails to
    read the file back (ZeroDivisionError), for FlexIndex's own indexer too (npids 0.1.3).
    """
    encoded = encode_docnos(docnos)
    write_npids_blocks(path, [encoded], count=len(encoded), width=max([1, *map(len, encoded)]))
    back = read_npids(path)
    if len(back) != len(docnos):
        raise ValueError(f"{path} reads back {len(back)} docnos instead of {len(docnos)}")
    wrong = next((i for i, (a, b) in enumerate(zip(back, docnos, strict=True)) if a != b), None)
    if wrong is not None:
        raise ValueError(
            f"docno {docnos[wrong]!r} cannot be stored: docnos.npids reads it back as {back[wrong]!r} "
            "(a docno may not end with a NUL character)"
        )


def encode_docnos(docnos: list[str] | np.ndarray) -> list[bytes]:
    """The utf-8 bytes of each docno, as stored in ``docnos.npids``."""
    encoded = []
    for docno in docnos:
        try:
            encoded.append(str(docno).encode("utf-8"))
        except UnicodeEncodeError as err:
            raise ValueError(f"docno {docno!r} cannot be stored: it is not valid unicode ({err.reason})") from None
    return encoded


def write_npids_blocks(path: Path, blocks: Iterable[list[bytes]], *, count: int, width: int) -> None:
    """A ``docnos.npids`` of ``count`` utf-8 docnos given block by block (e.g. shard by shard, so
    they are never all in memory at once), each at most ``width`` bytes; not read back."""
    from npids.builder import InvLookupBuilder
    from npids.utils import FileManager

    written = 0
    with FileManager(path, "a") as out:
        out.write_header(0, count, {"format": "fixedbytes", "length": width, "prefix": ""})
        for block in blocks:
            out.write(np.array(block, dtype=f"S{width}").tobytes())
            written += len(block)
    if written != count:
        raise ValueError(f"{path}: {written} docnos were given, {count} announced")
    InvLookupBuilder.build(path)


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
