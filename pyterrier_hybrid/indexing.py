"""Encoding a whole corpus into an index, in one process, under torchrun, or as independent jobs.

:func:`index_corpus` is ``pyterrier-hybrid index CORPUS --out DIR``. The corpus (see
:mod:`pyterrier_hybrid.corpus`) is cut into ``num_shards`` contiguous shards
(:func:`~pyterrier_hybrid.index.sharded.shard_bounds`); each process encodes its shards into
``DIR/shards/<i>-of-<N>/`` in resumable chunks. Where the processes come from:

- one process (default): one shard, or ``num_shards`` shards one after the other;
- torchrun (``WORLD_SIZE`` > 1): rank r encodes shards r, r + W, ...; ``torch.distributed`` (gloo on
  CPU, nccl where CUDA is available) provides the barrier after which rank 0 merges;
- independent jobs (a Slurm array): ``shard=I, num_shards=N`` encodes shard I only; once all are
  done, :func:`merge_index` (``pyterrier-hybrid index merge DIR...``) joins them.

``DIR/build.json`` records what is being built (corpus, size, model fingerprint, backend, text
field, number of shards, chunk size); a rerun with the same options resumes (finished shards are
kept, unfinished ones continue from their last chunk) and gives the same index; any other
options are refused, as is a directory holding anything else. Once merged, ``DIR`` is a FlexIndex
(``pyterrier_dr.FlexIndex`` and :class:`~pyterrier_hybrid.DenseIndex` open it) whose metadata has
the build record, ``world_size`` and the shard boundaries; with ``keep_shards`` it is a
:class:`~pyterrier_hybrid.index.sharded.ShardedIndex` instead.

Threads: each process uses ``threads`` torch threads, by default its CPUs
(``os.sched_getaffinity``) divided by the processes of its machine (``LOCAL_WORLD_SIZE``), so ranks on
one machine do not oversubscribe the cores (torchrun itself sets ``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

from .corpus import Corpus, open_corpus
from .fs import atomic_write_text, ensure_writable_dir
from .index import DenseIndex
from .index.layout import json_text
from .index.sharded import (
    SHARDED_FORMAT,
    ShardWriter,
    check_shard_set,
    merge_shards,
    shard_bounds,
    shard_name,
    write_sharded_meta,
)

__all__ = ["DEFAULT_CHUNK_SIZE", "Distributed", "index_corpus", "merge_index", "rank_threads"]

DEFAULT_CHUNK_SIZE = 4096
"""Documents per resumable chunk: the most work a killed process loses."""
_BARRIER_TIMEOUT = timedelta(days=7)  # ranks wait at the barrier for the slowest shard


class Distributed(NamedTuple):
    """Where this process stands in a torchrun job (``world_size`` 1 without torchrun)."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int

    @classmethod
    def from_env(cls) -> Distributed:
        """From torchrun's environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")),
                   int(os.environ.get("LOCAL_WORLD_SIZE", str(world))))


def rank_threads(dist: Distributed, threads: int | None = None) -> int:
    """Torch threads for this process: ``threads``, else this process's CPUs divided among the ranks
    of its machine (at least 1)."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        return threads
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // max(1, dist.local_world_size))


class _Group:
    """torch.distributed for the barrier (nothing when there is one process)."""

    def __init__(self, dist: Distributed):
        self.dist = dist
        self.active = False
        if dist.world_size > 1:
            import torch
            import torch.distributed as td

            if not td.is_initialized():
                backend = "nccl" if torch.cuda.is_available() else "gloo"
                td.init_process_group(backend=backend, timeout=_BARRIER_TIMEOUT)
                self.active = True

    def barrier(self) -> None:
        if self.dist.world_size > 1:
            import torch.distributed as td

            td.barrier()

    def close(self) -> None:
        if self.active:
            import torch.distributed as td

            td.destroy_process_group()


def index_corpus(
    corpus: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    backend: str | None = None,
    batch_size: int | None = None,
    text_field: str | None = None,
    shard: int | None = None,
    num_shards: int | None = None,
    keep_shards: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    threads: int | None = None,
    verbose: bool = True,
) -> Path:
    """Encode ``corpus`` into an index at ``out`` (see the module docstring); returns ``out``.

    Safe to rerun after a failure: it resumes. Under torchrun every rank calls it with the same
    arguments; with ``shard`` only that shard is encoded (no merge).
    """
    out = Path(out)
    dist = Distributed.from_env()
    _check_shard_options(shard, num_shards, dist, chunk_size)
    source = open_corpus(corpus, text_field=text_field)  # fails on a missing corpus before any model loads
    count = len(source)
    if count == 0:
        raise ValueError(f"the corpus {source.name} is empty: nothing to index")
    existing = _existing_build(out)
    if existing is None and out.exists():
        _refuse_foreign(out)

    import torch

    n_threads = rank_threads(dist, threads)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        return _run(source, out, existing, dist, n_threads, model=model, backend=backend, batch_size=batch_size,
                    text_field=text_field, shard=shard, num_shards=num_shards, keep_shards=keep_shards,
                    chunk_size=chunk_size, verbose=verbose)
    finally:
        torch.set_num_threads(threads_before)


def _run(source: Corpus, out: Path, existing: dict[str, Any] | None, dist: Distributed, n_threads: int, *,
         model: Any, backend: str | None, batch_size: int | None, text_field: str | None, shard: int | None,
         num_shards: int | None, keep_shards: bool, chunk_size: int, verbose: bool) -> Path:
    from .encoders import DenseEncoder

    count = len(source)
    encoder = DenseEncoder(model, backend=backend, batch_size=batch_size, threads=n_threads, cache=False)
    build = {
        "corpus": source.name, "count": count, "model": encoder.model_name, "fingerprint": encoder.fingerprint,
        "backend": encoder.backend, "dim": int(encoder.model.get_embedding_dimension()), "text_field": text_field,
        "chunk_size": chunk_size,
    }
    if existing is not None:
        _check_same_build(out, existing, build, num_shards)
        build["num_shards"] = existing["num_shards"]
        if (out / "pt_meta.json").is_file():
            if verbose and dist.rank == 0:
                print(f"{out} is already built from {source.name}: nothing to do", file=sys.stderr)
            return out
    else:
        build["num_shards"] = num_shards or dist.world_size
    bounds = shard_bounds(count, build["num_shards"])
    if shard is not None and shard >= build["num_shards"]:
        raise ValueError(f"--shard {shard} is out of range: this build has {build['num_shards']} shards (0 .. "
                         f"{build['num_shards'] - 1})")

    group = _Group(dist)
    try:
        if existing is None and dist.rank == 0:
            ensure_writable_dir(out)
            atomic_write_text(out / "build.json", json_text(build))
        group.barrier()
        if dist.rank != 0 and existing is None:
            _check_same_build(out, json.loads((out / "build.json").read_text()), build, num_shards)
        mine = [shard] if shard is not None else list(range(dist.rank, build["num_shards"], dist.world_size))
        for number in mine:
            _encode_shard(source, encoder, out, build, number, bounds[number], dist=dist, threads=n_threads,
                          independent=shard is not None, verbose=verbose)
        if shard is not None:
            if verbose:
                print(f"shard {shard} of {build['num_shards']} done in {out}; once every shard is, run: "
                      f"pyterrier-hybrid index merge {out}", file=sys.stderr)
            return out
        group.barrier()
        if dist.rank == 0:
            _finish(out, build, world_size=dist.world_size, keep_shards=keep_shards, verbose=verbose)
        group.barrier()
    finally:
        group.close()
    return out


def merge_index(dirs: list[str | os.PathLike[str]], *, out: str | os.PathLike[str] | None = None,
                keep_shards: bool = False, verbose: bool = True) -> Path:
    """Join the shards found in ``dirs`` (build directories, shard directories or sharded indexes)
    into one index at ``out`` (default: the one directory given). With ``keep_shards`` and a single
    build directory, it becomes a sharded index instead."""
    if not dirs:
        raise ValueError("index merge needs at least one directory")
    paths = [Path(d) for d in dirs]
    if out is None:
        if len(paths) > 1:
            raise ValueError(f"index merge of {len(paths)} directories needs --out (where the merged index goes)")
        out = paths[0]
    out = Path(out)
    shards = [s for p in paths for s in _shards_in(p)]
    ordered = check_shard_set(shards)
    build = dict(ordered[0].metadata["build"])
    inside = out.resolve() in {p.resolve() for p in paths}
    if not inside and out.exists() and any(out.iterdir()):
        raise FileExistsError(f"--out {out} already exists and is not empty; choose a new directory")
    if keep_shards:
        if not all(out.resolve() in s.path.resolve().parents for s in ordered):
            raise ValueError("--keep-shards needs the shards inside --out (a sharded index refers to them)")
        write_sharded_meta(out, ordered, metadata=_index_metadata(build, ordered, world_size=None))
    else:
        _merge(out, build, ordered, world_size=None, replace=inside, verbose=verbose)
    return out


# -- the pieces -------------------------------------------------------------------------------------


def _check_shard_options(shard: int | None, num_shards: int | None, dist: Distributed, chunk_size: int) -> None:
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    if num_shards is not None and num_shards < 1:
        raise ValueError(f"--num-shards must be >= 1, got {num_shards}")
    if shard is None:
        return
    if dist.world_size > 1:
        raise ValueError("--shard is for independent jobs (e.g. a Slurm array); under torchrun each rank "
                         "takes its shards itself: drop --shard / --num-shards")
    if num_shards is None:
        raise ValueError("--shard I needs --num-shards N (the size of the job array)")
    if not 0 <= shard < num_shards:
        raise ValueError(f"--shard must be in 0 .. {num_shards - 1} for --num-shards {num_shards}, got {shard}")


def _existing_build(out: Path) -> dict[str, Any] | None:
    """The build record of ``out`` (in progress: build.json; finished: the index metadata), or None."""
    if (out / "pt_meta.json").is_file():
        try:
            meta = json.loads((out / "pt_meta.json").read_text())
        except (OSError, json.JSONDecodeError):
            meta = {}
        build = meta.get("metadata", {}).get("build") if isinstance(meta, dict) else None
        if not isinstance(build, dict) or meta.get("format") not in ("flex", SHARDED_FORMAT):
            raise FileExistsError(f"{out} holds another index (pt_meta.json of type/format "
                                  f"{(meta.get('type'), meta.get('format'))} not built by 'pyterrier-hybrid index'); "
                                  "nothing was changed: choose another --out")
        return build
    if (out / "build.json").is_file():
        return json.loads((out / "build.json").read_text())
    return None


def _refuse_foreign(out: Path) -> None:
    if not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; give a directory")
    # build.json, shards/: written meanwhile by rank 0 or another job of the array (compared later)
    foreign = sorted(p.name for p in out.iterdir() if not p.name.startswith(".") and p.name not in ("build.json", "shards"))
    if foreign:
        raise FileExistsError(f"--out {out} is not empty and not an index build ({', '.join(foreign[:5])}); "
                              "nothing was changed: choose another directory")


def _check_same_build(out: Path, recorded: dict[str, Any], build: dict[str, Any], num_shards: int | None) -> None:
    if num_shards is not None and num_shards != recorded.get("num_shards"):
        raise ValueError(f"mismatched --num-shards: {out} is being built in {recorded.get('num_shards')} shards, "
                         f"this run asks for {num_shards}; rerun with --num-shards {recorded.get('num_shards')} "
                         "or choose another --out")
    differ = {k: (recorded.get(k), v) for k, v in build.items() if recorded.get(k) != v}
    if differ:
        said = "; ".join(f"{k}: {old!r} there, {new!r} now" for k, (old, new) in differ.items())
        raise ValueError(f"{out} holds the build of another index ({said}); nothing was changed: rerun with the "
                         "options of that build or choose another --out")


def _encode_shard(source: Corpus, encoder: Any, out: Path, build: dict[str, Any], number: int,
                  bounds: tuple[int, int], *, dist: Distributed, threads: int, independent: bool,
                  verbose: bool) -> None:
    import pyterrier as pt

    start, stop = bounds
    num_shards = build["num_shards"]
    meta = {"build": build, "shard": number, "start": start, "stop": stop}
    writer = ShardWriter(out / "shards" / shard_name(number, num_shards), start=start, stop=stop,
                         chunk_size=build["chunk_size"], metadata=meta)
    if writer.done():
        if DenseIndex(writer.directory).metadata.get("build") != build:
            raise ValueError(f"{writer.directory} is a shard of another build; nothing was changed: remove it or "
                             "choose another --out")
        writer.discard_partial()
        return
    resumed = writer.chunks_done() * build["chunk_size"]
    started = time.perf_counter()
    desc = f"{build['model']}: encoding {source.name} shard {number + 1}/{num_shards}"
    with pt.tqdm(total=stop - start, initial=min(resumed, stop - start), unit="doc", desc=desc,
                 position=dist.local_rank if dist.world_size > 1 else None, disable=not verbose,
                 dynamic_ncols=True) as bar:
        for chunk, begin, end in writer.chunk_ranges():
            docnos, texts = [], []
            for docno, text in source.docs(begin, end):
                docnos.append(docno)
                texts.append(text)
            writer.write_chunk(chunk, docnos, encoder.encode_docs(texts, verbose=False))
            bar.update(end - begin)
    seconds = time.perf_counter() - started
    done = stop - start - resumed
    writer.metadata["written_by"] = {
        "host": socket.gethostname(), "rank": dist.rank, "world_size": dist.world_size, "threads": threads,
        "independent": independent, "encode_seconds": round(seconds, 3), "documents_encoded": done,
        "docs_per_second": round(done / seconds, 2) if seconds > 0 and done > 0 else None,
    }
    writer.finish()


def _finish(out: Path, build: dict[str, Any], *, world_size: int, keep_shards: bool, verbose: bool) -> None:
    shards = [DenseIndex(out / "shards" / shard_name(i, build["num_shards"])) for i in range(build["num_shards"])]
    ordered = check_shard_set(shards)
    if keep_shards:
        write_sharded_meta(out, ordered, metadata=_index_metadata(build, ordered, world_size=world_size))
    else:
        _merge(out, build, ordered, world_size=world_size, replace=True, verbose=verbose)


def _merge(out: Path, build: dict[str, Any], shards: list[DenseIndex], *, world_size: int | None, replace: bool,
           verbose: bool) -> None:
    import shutil

    for stale in out.parent.glob(f".{out.name}.*.tmp"):  # a merge killed before it published (index-sized)
        shutil.rmtree(stale, ignore_errors=True)
    merge_shards(shards, out, metadata=_index_metadata(build, shards, world_size=world_size), replace=replace,
                 verbose=verbose)


def _index_metadata(build: dict[str, Any], shards: list[DenseIndex], *, world_size: int | None) -> dict[str, Any]:
    writers = [s.metadata.get("written_by", {}) for s in shards]
    if world_size is None:  # index merge: independent jobs count one process per shard
        world_size = max([w.get("world_size", 1) for w in writers if not w.get("independent")] or [len(shards)])
    return {
        "model": build["model"], "fingerprint": build["fingerprint"], "collection": build["corpus"],
        "build": build, "world_size": world_size,
        "shard_bounds": [[s.metadata["start"], s.metadata["stop"]] for s in shards],
        "written_by": writers,
    }


def _shards_in(path: Path) -> list[DenseIndex]:
    """The published shards in a build directory, a sharded index, or a shard directory itself."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    meta_path = path / "pt_meta.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("format") == SHARDED_FORMAT:
            return [DenseIndex(path / rel) for rel in meta["shards"]]
        index = DenseIndex(path)
        if "shard" in index.metadata:
            return [index]
        raise ValueError(f"{path} is a merged index already, not shards")
    found = sorted(p for p in (path / "shards").glob("*-of-*") if (p / "pt_meta.json").is_file()) \
        if (path / "shards").is_dir() else []
    if not found:
        raise ValueError(f"{path} holds no finished shards (expected {path}/shards/<i>-of-<n>/ or a shard directory)")
    return [DenseIndex(p) for p in found]
