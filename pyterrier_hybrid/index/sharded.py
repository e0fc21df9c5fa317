"""An index built in shards: resumable shard writing, the streaming merge, and search over shards.

A corpus of n documents in N shards: shard i holds positions ``[i*n//N, (i+1)*n//N)`` (contiguous,
the same whoever computes them). Each shard is a :class:`~.storage.DenseIndex` directory of its own
whose metadata says which shard of which build it is (``shard``, ``start``, ``stop`` and ``build``:
corpus, count, model fingerprint, backend, ``num_shards``, chunk size). While it is encoded, a shard
is a hidden ``.<name>.partial/`` directory of chunk files, each written atomically, so a killed
process resumes from its last complete chunk; the finished shard is published atomically.

:func:`merge_shards` joins a complete set of shards into one FlexIndex by copying the vector bytes
shard after shard (fixed-size buffers, never a memory map of the whole: peak memory stays at the
docnos, see ``benchmarks/bench_sharded.py``). :class:`ShardedIndex` is the unmerged form (a
``pt_meta.json`` of format ``hybrid_sharded`` listing the shard directories); its retriever searches
each shard (exact or faiss) and merges the per-shard top k exactly, so an exact search of a sharded
index returns the same documents, scores and ranks as the merged index.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyterrier as pt

from ..fs import atomic_dir, atomic_write, atomic_write_text
from .docnos import encode_docnos, read_npids, write_npids_blocks
from .layout import json_text
from .retriever import DEFAULT_NUM_RESULTS, FULL_RANKING_MAX_DOCS, resolve_method
from .storage import FORMAT, FORMAT_VERSION, DenseIndex

__all__ = [
    "SHARDED_FORMAT",
    "ShardWriter",
    "ShardedIndex",
    "ShardedRetriever",
    "check_shard_set",
    "merge_shards",
    "shard_bounds",
    "shard_name",
    "write_sharded_meta",
]

SHARDED_FORMAT = "hybrid_sharded"
"""pt_meta.json ``format`` of a :class:`ShardedIndex` (type ``dense_index``)."""
_COPY_BUFFER = 1 << 24  # bytes per read when merging vectors (16 MiB)


def shard_bounds(count: int, num_shards: int) -> list[tuple[int, int]]:
    """The contiguous ``[start, stop)`` of each of ``num_shards`` shards of ``count`` documents."""
    if not isinstance(num_shards, int) or num_shards < 1:
        raise ValueError(f"the number of shards must be a positive int, got {num_shards!r}")
    if count < num_shards:
        raise ValueError(f"cannot split {count} documents into {num_shards} shards: some shards would be empty; "
                         f"use at most {count} shards (processes)")
    return [(i * count // num_shards, (i + 1) * count // num_shards) for i in range(num_shards)]


def shard_name(shard: int, num_shards: int) -> str:
    """Directory name of a shard, e.g. ``00001-of-00004``."""
    return f"{shard:05d}-of-{num_shards:05d}"


class ShardWriter:
    """Encodes one shard in chunks that survive a killed process, then publishes it as a DenseIndex.

    ``directory``: the shard's final path; chunks go to the hidden sibling ``.<name>.partial/``.
    Chunk c holds positions ``start + c*chunk_size`` up to the next chunk (or ``stop``).
    """

    def __init__(self, directory: Path, *, start: int, stop: int, chunk_size: int, metadata: dict[str, Any]):
        self.directory = Path(directory)
        self.partial = self.directory.with_name(f".{self.directory.name}.partial")
        self.start, self.stop, self.chunk_size = start, stop, chunk_size
        self.metadata = metadata

    def done(self) -> bool:
        """Whether the shard is published."""
        return (self.directory / "pt_meta.json").is_file()

    def chunks_done(self) -> int:
        """Complete chunks already written (a resumed shard starts after them)."""
        if not self.partial.is_dir():
            return 0
        found = 0
        while (self.partial / _chunk_file(found)).is_file():
            found += 1
        return found

    def chunk_ranges(self) -> Iterator[tuple[int, int, int]]:
        """(chunk number, start, stop) of the chunks still to write."""
        first = self.chunks_done()
        for number, begin in enumerate(range(self.start, self.stop, self.chunk_size)):
            if number >= first:
                yield number, begin, min(begin + self.chunk_size, self.stop)

    def write_chunk(self, number: int, docnos: list[str], vectors: np.ndarray) -> None:
        """Store chunk ``number`` atomically."""
        self.partial.mkdir(parents=True, exist_ok=True)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as out:
                np.savez(out, docnos=np.asarray(docnos, dtype=str), vectors=np.asarray(vectors, dtype=np.float32))

        atomic_write(self.partial / _chunk_file(number), write)

    def finish(self) -> DenseIndex:
        """Publish the shard from its chunks (atomically) and remove them."""
        chunks = (len(range(self.start, self.stop, self.chunk_size)))
        if self.chunks_done() != chunks:
            raise ValueError(f"shard {self.directory} has {self.chunks_done()} of its {chunks} chunks")

        def read() -> Iterator[tuple[list[str], np.ndarray]]:
            for number in range(chunks):
                with np.load(self.partial / _chunk_file(number), allow_pickle=False) as data:
                    yield data["docnos"].tolist(), data["vectors"]

        index = DenseIndex(self.directory)
        index._write(read(), metadata=self.metadata, mode="create")
        shutil.rmtree(self.partial, ignore_errors=True)
        return index

    def discard_partial(self) -> None:
        """Remove chunks left behind (after the shard was published)."""
        shutil.rmtree(self.partial, ignore_errors=True)


def _chunk_file(number: int) -> str:
    return f"chunk-{number:06d}.npz"


# -- checking and merging -------------------------------------------------------------------------


def check_shard_set(shards: list[DenseIndex]) -> list[DenseIndex]:
    """The shards of one build in shard order; raises naming the problem if they are not exactly
    one complete set (all of one corpus, model, backend, dimension and ``num_shards``)."""
    if not shards:
        raise ValueError("no shards given")
    described = []
    for index in shards:
        meta = index.metadata
        if not {"shard", "start", "stop", "build"} <= set(meta):
            raise ValueError(f"{index.path} is a dense index but not a shard of a pyterrier-hybrid index build "
                             "(its metadata has no shard / build record)")
        described.append((index, meta))
    first, first_meta = described[0]
    build = first_meta["build"]
    for index, meta in described[1:]:
        other = meta["build"]
        if other.get("num_shards") != build.get("num_shards"):
            raise ValueError(f"mismatched --num-shards: {first.path} is a shard of {build.get('num_shards')}, "
                             f"{index.path} of {other.get('num_shards')}; all shards of an index share one count")
        for key, what in (("fingerprint", "model / backend"), ("dim", "vector dimension"),
                          ("corpus", "corpus"), ("count", "corpus size"), ("text_field", "text field")):
            if other.get(key) != build.get(key):
                raise ValueError(f"{index.path} is a shard of another index: its {what} is {other.get(key)!r}, "
                                 f"that of {first.path} is {build.get(key)!r} (model {other.get('model')!r} vs "
                                 f"{build.get('model')!r}); shards of one index come from one build")
    by_number: dict[int, DenseIndex] = {}
    for index, meta in described:
        if meta["shard"] in by_number:
            raise ValueError(f"shard {meta['shard']} is given twice: {by_number[meta['shard']].path} and {index.path}")
        by_number[meta["shard"]] = index
    missing = sorted(set(range(build["num_shards"])) - set(by_number))
    if missing:
        raise ValueError(f"incomplete set of shards: {len(missing)} of {build['num_shards']} missing "
                         f"(shard numbers {missing[:10]}); finish them first (rerun their jobs)")
    ordered = [by_number[i] for i in range(build["num_shards"])]
    bounds = shard_bounds(build["count"], build["num_shards"])
    for (start, stop), index in zip(bounds, ordered, strict=True):
        if (index.metadata["start"], index.metadata["stop"], len(index)) != (start, stop, stop - start):
            raise ValueError(f"shard {index.path} covers [{index.metadata['start']}, {index.metadata['stop']}) with "
                             f"{len(index)} documents, expected [{start}, {stop})")
    return ordered


def merge_shards(shards: list[DenseIndex], out: Path, *, metadata: dict[str, Any], replace: bool,
                 verbose: bool = False) -> DenseIndex:
    """One FlexIndex at ``out`` from a complete set of shards (in order), atomically.

    Vectors are copied as bytes through a fixed buffer; the docnos (utf-8 bytes of all shards) are
    the only thing held for the whole index, to check that they are unique across shards.
    ``replace``: ``out`` may be replaced (e.g. the build directory holding the shards).
    """
    shards = check_shard_set(shards)
    dim = shards[0].dim
    blocks = [np.array(encode_docnos(read_npids(s.path / "docnos.npids")), dtype=bytes) for s in shards]
    everything = np.concatenate(blocks)
    unique, counts = np.unique(everything, return_counts=True)
    if (counts > 1).any():
        repeated = [d.decode() for d in unique[counts > 1][:5]]
        raise ValueError(f"docnos repeat across shards ({int((counts > 1).sum())} of them, e.g. {repeated}); "
                         "docnos of an index must be unique")
    del unique, counts
    width = max(1, everything.dtype.itemsize)
    count = len(everything)
    del everything
    with atomic_dir(out, replace=replace) as tmp:
        with open(tmp / "vecs.f4", "wb") as target, pt.tqdm(total=count, unit="doc", unit_scale=True,
                                                           desc="merging shards", disable=not verbose) as bar:
            for shard in shards:
                expected = len(shard) * dim * 4
                with open(shard.path / "vecs.f4", "rb") as source:
                    copied = 0
                    while chunk := source.read(_COPY_BUFFER):
                        target.write(chunk)
                        copied += len(chunk)
                if copied != expected:
                    raise ValueError(f"{shard.path}/vecs.f4 has {copied} bytes, expected {expected} (damaged shard?)")
                bar.update(len(shard))
        write_npids_blocks(tmp / "docnos.npids", blocks, count=count, width=width)
        meta = {
            "type": DenseIndex.ARTIFACT_TYPE,
            "format": FORMAT,
            "vec_size": dim,
            "doc_count": count,
            "package_hint": DenseIndex.ARTIFACT_PACKAGE_HINT,
            "format_version": FORMAT_VERSION,
            "metadata": metadata,
        }
        (tmp / "pt_meta.json").write_text(json_text(meta))
    return DenseIndex(out)


def write_sharded_meta(directory: Path, shards: list[DenseIndex], *, metadata: dict[str, Any]) -> ShardedIndex:
    """Make ``directory`` a :class:`ShardedIndex` over ``shards`` (inside it), atomically."""
    shards = check_shard_set(shards)
    meta = {
        "type": DenseIndex.ARTIFACT_TYPE,
        "format": SHARDED_FORMAT,
        "vec_size": shards[0].dim,
        "doc_count": sum(len(s) for s in shards),
        "package_hint": DenseIndex.ARTIFACT_PACKAGE_HINT,
        "format_version": 1,
        "shards": [os.path.relpath(s.path, directory) for s in shards],
        "metadata": metadata,
    }
    atomic_write_text(directory / "pt_meta.json", json_text(meta))
    return ShardedIndex(directory)


# -- the sharded index and its retriever ----------------------------------------------------------


class ShardedIndex(pt.Artifact):
    """An index kept as shards (``pyterrier-hybrid index --keep-shards``): each shard a DenseIndex,
    listed in order in ``pt_meta.json`` (format ``hybrid_sharded``). Document ``docid`` i is the
    i-th document over the shards in order, as in the merged index."""

    ARTIFACT_TYPE = "dense_index"
    ARTIFACT_FORMAT = SHARDED_FORMAT
    ARTIFACT_PACKAGE_HINT = "pyterrier-hybrid"

    def __init__(self, path: str | os.PathLike[str]):
        super().__init__(path)
        self._meta: dict[str, Any] | None = None
        self._shards: list[DenseIndex] | None = None

    def __repr__(self) -> str:
        return f"ShardedIndex({str(self.path)!r})"

    def _read_meta(self) -> dict[str, Any]:
        if self._meta is None:
            meta_path = self.path / "pt_meta.json"
            if not meta_path.is_file():
                raise FileNotFoundError(f"no sharded index at {self.path}: it has no pt_meta.json")
            meta = json.loads(meta_path.read_text())
            if (meta.get("type"), meta.get("format")) != (self.ARTIFACT_TYPE, SHARDED_FORMAT):
                raise ValueError(f"{self.path} is not a sharded index: pt_meta.json has type/format "
                                 f"{(meta.get('type'), meta.get('format'))}, expected {(self.ARTIFACT_TYPE, SHARDED_FORMAT)}"
                                 + (" (a merged index: open it with DenseIndex)" if meta.get("format") == FORMAT else ""))
            self._meta = meta
        return self._meta

    def shards(self) -> list[DenseIndex]:
        """The shards in order."""
        if self._shards is None:
            self._shards = [DenseIndex(self.path / rel) for rel in self._read_meta()["shards"]]
        return self._shards

    def offsets(self) -> np.ndarray:
        """The docid of each shard's first document (and the total count last)."""
        return np.concatenate([[0], np.cumsum([len(s) for s in self.shards()])]).astype(np.int64)

    def __len__(self) -> int:
        return int(self._read_meta()["doc_count"])

    @property
    def dim(self) -> int:
        """Vector dimension."""
        return int(self._read_meta()["vec_size"])

    @property
    def metadata(self) -> dict[str, Any]:
        """The build's metadata (a copy)."""
        return json.loads(json.dumps(self._read_meta().get("metadata", {})))

    def docnos(self) -> np.ndarray:
        """All docnos in docid order (read from every shard)."""
        return np.concatenate([s.docnos() for s in self.shards()])

    def retriever(self, *, num_results: int | None = DEFAULT_NUM_RESULTS, method: str | None = None,
                  verbose: bool = False, drop_query_vec: bool = False, backend: str | None = None,
                  **options: Any) -> ShardedRetriever:
        """A retriever over all shards by ``method`` (``exact``, ``hnsw``, ``ivf``; ``backend=``: its
        deprecated name); ``options`` (the method's parameters, ``batch_size``) go to each shard's
        :class:`~.retriever.DenseRetriever`."""
        return ShardedRetriever(self, num_results=num_results, method=resolve_method(method, backend),
                                verbose=verbose, drop_query_vec=drop_query_vec, **options)


class ShardedRetriever(pt.Transformer):
    """Ranks the documents of a :class:`ShardedIndex`: each shard's top k (its own retriever, exact or
    faiss), merged by score descending then docno descending, the order of
    :class:`~.retriever.DenseRetriever`. Scores are per (query, document) and do not depend on the
    shard, so an exact search gives the merged index's results, ``docid`` included."""

    def __init__(self, index: ShardedIndex, *, num_results: int | None = DEFAULT_NUM_RESULTS, method: str = "exact",
                 verbose: bool = False, drop_query_vec: bool = False, **options: Any):
        count = len(index)
        self.index = index
        self.method = method
        self.options = options
        if num_results is None:
            exact = method == "exact"
            num_results = count if exact and count <= FULL_RANKING_MAX_DOCS else DEFAULT_NUM_RESULTS
        if not isinstance(num_results, int) or isinstance(num_results, bool) or num_results < 1:
            raise ValueError(f"num_results must be a positive int or None, got {num_results!r}")
        self.num_results = min(num_results, count)
        self.verbose = verbose
        self.drop_query_vec = drop_query_vec
        self._retrievers = [s.retriever(num_results=self.num_results, method=method, drop_query_vec=True, **options)
                            for s in index.shards()]

    def __repr__(self) -> str:
        return f"{self.index!r}.retriever(method={self.method!r}, num_results={self.num_results}, {self.options})"

    def transform_outputs(self, input_columns: list[str]) -> list[str]:
        pt.validate.query_frame(input_columns, extra_columns=["query_vec"])
        kept = [c for c in input_columns if not (self.drop_query_vec and c == "query_vec")]
        return [*kept, "docno", "docid", "score", "rank"]

    def transform(self, inp: pd.DataFrame) -> pd.DataFrame:
        pt.validate.query_frame(inp, extra_columns=["query_vec"])
        inp = inp.reset_index(drop=True)
        if len(inp) == 0:
            base = inp.drop(columns="query_vec") if self.drop_query_vec else inp
            return base.assign(docno=pd.Series([], dtype=object), docid=np.empty(0, np.int64),
                               score=np.empty(0, np.float32), rank=np.empty(0, np.int64))
        queries = pd.DataFrame({"qid": inp["qid"], "query_vec": inp["query_vec"], "_pos": np.arange(len(inp))})
        runs = []
        offsets = self.index.offsets()
        shards = zip(self._retrievers, offsets[:-1], strict=True)
        for retriever, offset in pt.tqdm(list(shards), desc="searching shards", unit="shard", disable=not self.verbose):
            run = retriever.transform(queries)
            runs.append(run.assign(docid=run["docid"].to_numpy() + offset))
        found = pd.concat(runs, ignore_index=True).drop(columns="qid")
        found = found.sort_values(["_pos", "score", "docno"], ascending=[True, False, False], kind="stable")
        found = found.groupby("_pos", sort=False).head(self.num_results).reset_index(drop=True)
        found["rank"] = found.groupby("_pos").cumcount().astype(np.int64)
        base = inp.drop(columns="query_vec") if self.drop_query_vec else inp
        out = base.assign(_pos=np.arange(len(inp))).merge(found, on="_pos", how="inner", sort=False)
        return out.drop(columns="_pos")[[*base.columns, "docno", "docid", "score", "rank"]]
