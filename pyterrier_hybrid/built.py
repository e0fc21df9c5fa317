"""The file record of the models this package builds into the home (the converted default model,
the packaged models rebuilt from their delta): every file's size and digest, written last into the
build and checked when the model is used (once per process and file state), so a damaged build is
rebuilt instead of silently loaded."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import warnings
from pathlib import Path

__all__ = ["FILES_RECORD", "UNRECORDED", "BuiltModelWarning", "check_files", "record_files", "set_aside", "usable"]

log = logging.getLogger(__name__)

#: Written last into every model this package builds: each file's size and digest (checked on use).
FILES_RECORD = "pyterrier_hybrid_files.json"


class BuiltModelWarning(UserWarning):
    """A model this package built (cached under the home) was damaged; it is rebuilt."""


def _hasher():
    try:
        import xxhash

        return "xxh3_128", xxhash.xxh3_128()
    except ImportError:  # pragma: no cover - xxhash comes with `datasets`
        return "blake2b-128", hashlib.blake2b(digest_size=16)


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name != FILES_RECORD)


def _digest(path: Path) -> str:
    _, h = _hasher()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def record_files(model_dir: str | os.PathLike) -> None:
    """Write :data:`FILES_RECORD` into a model directory being built: every file's size and digest
    (xxh3: about 0.1 s for multilingual-e5-small's 470 MB)."""
    model_dir = Path(model_dir)
    files = {str(p.relative_to(model_dir)): [p.stat().st_size, _digest(p)] for p in _files(model_dir)}
    (model_dir / FILES_RECORD).write_text(json.dumps({"algorithm": _hasher()[0], "files": files}, indent=1) + "\n")


UNRECORDED = f"no {FILES_RECORD}: built by an older version of pyterrier-hybrid, which did not record its files"

#: Built directories found whole in this process, by their files' (name, size, mtime, inode).
_CHECKED: dict[str, tuple] = {}


def check_files(model_dir: str | os.PathLike) -> str | None:
    """Why a built model directory is not what was built (a file missing, added, of another size or
    digest; no record), or None when it is whole. Hashed once per process and file state."""
    model_dir = Path(model_dir)
    try:
        files = _files(model_dir)
        state = tuple((str(p), st.st_size, st.st_mtime_ns, st.st_ino) for p in files for st in [p.stat()])
        if _CHECKED.get(str(model_dir)) == state:
            return None
        record = json.loads((model_dir / FILES_RECORD).read_text())
        expected = record["files"]
        algorithm = record.get("algorithm")
    except FileNotFoundError:
        return UNRECORDED
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"{FILES_RECORD} unreadable ({type(e).__name__})"
    if algorithm != _hasher()[0]:
        return f"{FILES_RECORD} uses {algorithm}"
    found = {str(p.relative_to(model_dir)): p for p in files}
    if set(found) != set(expected):
        missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
        return f"files missing {missing[:3]}, unexpected {extra[:3]}"
    for name, (size, digest) in expected.items():
        if found[name].stat().st_size != size:
            return f"{name} has {found[name].stat().st_size} bytes, built with {size}"
        if _digest(found[name]) != digest:
            return f"{name} differs from what was built (digest)"
    _CHECKED[str(model_dir)] = state
    return None


def usable(model_dir: Path) -> bool:
    """Whether a built model can be used as it is: whole, or built before the record existed where it
    cannot be rebuilt (a read-only home: used unchecked, as before)."""
    problem = check_files(model_dir)
    if problem == UNRECORDED and not os.access(model_dir.parent, os.W_OK):
        log.warning("%s cannot be checked (%s) and the home is read-only: used as it is", model_dir, problem)
        return True
    return problem is None


def set_aside(model_dir: Path, problem: str) -> None:
    """Warn that a built model is damaged and move it out of the way (to a hidden sibling that the
    next build removes); the caller holds its lock and rebuilds it."""
    if problem == UNRECORDED:  # cannot be checked: rebuilt once, recorded from then on
        log.warning("rebuilding %s (%s)", model_dir, problem)
    else:
        warnings.warn(f"the built model {model_dir} is damaged ({problem}); it is rebuilt", BuiltModelWarning,
                      stacklevel=3)
    model_dir.rename(model_dir.with_name(f".{model_dir.name}.{secrets.token_hex(4)}.damaged"))
    _CHECKED.pop(str(model_dir), None)
