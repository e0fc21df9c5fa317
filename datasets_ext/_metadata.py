"""Computes ``metadata.json``: the counts of every LAReQA dataset id, as ir_datasets metadata.

ir_datasets keeps the counts of its own datasets in a package data file
(``ir_datasets/etc/metadata.json``) read through a ``MetadataProvider``, so that
``docs_count()``, ``queries_count()`` and ``qrels_count()`` answer without parsing any file.
The LAReQA ids do the same with ``datasets_ext/metadata.json`` (read in ``_registry``), in
ir_datasets' layout: ``{dataset_id: {"docs": {"count": n} | {"_ref": id sharing the corpus},
"queries": {"count": n}, "qrels": {"count": n}}}``. This module is not imported by the package.

The counts are fixed by the md5-pinned files. They were computed once from the files with::

    LAREQA_DATA_DIR=... python -m datasets_ext._metadata

and a test recomputes them from the real files and compares.
"""

import json
import os
import sys
import tempfile
from pathlib import Path

from ._registry import METADATA_FILE, dataset_ids
from .lareqa import Benchmark, Selection


def _docs_ref(bench: Benchmark, sel: Selection) -> str | None:
    """The id whose corpus ``sel`` shares (ir_datasets' ``_ref``), or None if it owns it."""
    if sel.doc_langs == bench.languages:
        return None if sel.query_langs == bench.languages else bench.name
    d = sel.doc_langs[0]
    return None if sel.query_langs == (d,) else f"{bench.name}/{d}-{d}"


def compute_metadata(benchmarks: list[Benchmark]) -> dict[str, dict]:
    """Count docs, queries and qrels of every id by parsing the benchmark files."""
    metadata = {}
    for bench in benchmarks:
        for dsid, sel in dataset_ids(bench).items():
            ref = _docs_ref(bench, sel)
            metadata[dsid] = {
                "docs": {"_ref": ref} if ref else {"count": len(sel.docs())},
                "queries": {"count": len(sel.queries())},
                "qrels": {"count": sum(1 for _ in sel.qrels())},
            }
    return metadata


def dumps(metadata: dict[str, dict]) -> str:
    """JSON with one dataset id per line (readable diffs)."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in metadata.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write(path: Path, metadata: dict[str, dict]) -> None:
    """Write ``metadata`` to ``path`` atomically (temp file in the same directory, then rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(dumps(metadata))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main() -> None:
    from . import BENCHMARKS

    path = Path(__file__).with_name(METADATA_FILE)
    metadata = compute_metadata(list(BENCHMARKS.values()))
    write(path, metadata)
    sys.stdout.write(f"wrote {len(metadata)} dataset ids to {path}\n")


if __name__ == "__main__":
    main()
