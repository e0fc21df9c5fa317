"""The ir_datasets start-up hook (``pyterrier_hybrid_irds.pth``) in fresh venvs: wheel and editable.

Each venv is new (``python -m venv``) and reuses this environment's dependencies through a path
file, so only this package is installed into it, the way a user's ``pip install`` would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE",
           "datasets_ext_startup.py", "pyterrier_hybrid_irds.pth", "datasets_ext", "pyterrier_hybrid"]

pytestmark = pytest.mark.slow


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    return {**env, **extra}


def _run(python: Path, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    out = subprocess.run([str(python), *args], capture_output=True, text=True, env=_env(**env),
                         cwd=python.parents[1])
    if check and out.returncode:
        raise AssertionError(f"{args} failed:\n{out.stdout}\n{out.stderr}")
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A copy of the package sources (builds write into the source tree)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    return src


def _fresh_venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    # this environment's packages (pip, setuptools, ir_datasets, torch, ...), after the venv's own
    (site / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _check_hook(python: Path) -> Path:
    """Checks the hook in the venv of ``python``; returns where ``datasets_ext`` was imported from."""
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    assert (site / "pyterrier_hybrid_irds.pth").is_file()
    # nothing imported at start-up but the hook itself: ir_datasets stays unimported until asked for
    out = _run(python, "-X", "importtime", "-c", "import sys; print('ir_datasets' in sys.modules)")
    assert out.stdout.strip() == "False"
    assert "datasets_ext_startup" in out.stderr and "ir_datasets" not in out.stderr
    # the README's first line, with nothing else imported: real counts and records from the files
    code = ("import ir_datasets; ds = ir_datasets.load('xquad-r/ar-en'); q = next(iter(ds.queries_iter()));"
            "print(ds.queries_count(), q.query_id, ir_datasets.load('mlqa-r/zh-multi').docs_count());"
            "import datasets_ext; print(datasets_ext.__file__)")
    lines = _run(python, "-c", code).stdout.split()
    assert lines[:2] == ["1190", "ar_56beb4343aeaaa14008c925b"]
    assert lines[2] == "20534"  # the MLQA-R pool (7 languages)
    # ir_datasets' own command (`python -m ir_datasets` finds the spec before importing the package)
    out = _run(python, "-m", "ir_datasets", "export", "xquad-r/de-en", "queries", "--fields", "query_id")
    ids = out.stdout.split()
    assert len(ids) == 1190 and all(i.startswith("de_") for i in ids)
    # turned off: ir_datasets' bare KeyError, and the hook is not even imported
    out = _run(python, "-X", "importtime", "-c", "import ir_datasets; ir_datasets.load('xquad-r/ar-en')",
               check=False, PYTERRIER_HYBRID_IRDS_HOOK="0")
    assert out.returncode != 0 and "KeyError: 'xquad-r/ar-en'" in out.stderr
    assert "datasets_ext_startup" not in out.stderr
    # importing datasets_ext first (it imports ir_datasets itself) still registers once
    out = _run(python, "-c", "import datasets_ext, ir_datasets; print(len([i for i in ir_datasets.registry._registered"
               " if i.startswith(('xquad-r', 'mlqa-r'))]))")
    assert out.stdout.strip() == str(2 + 11 * 12 + 7 * 8)
    return Path(lines[3])


def test_wheel_install_registers_ids_when_ir_datasets_is_imported(source, tmp_path, tiny_model_dir):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, env=_env())
    (wheel,) = (tmp_path / "dist").glob("pyterrier_hybrid-*.whl")
    python = _fresh_venv(tmp_path / "venv")
    _run(python, "-m", "pip", "install", "--no-deps", "-q", str(wheel))
    assert _check_hook(python).is_relative_to(tmp_path / "venv")
    # the installed entry points: a saved model directory (pt_meta.json) loads as a DenseEncoder artifact
    from pyterrier_hybrid.artifact_meta import write_artifact_meta

    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    write_artifact_meta(model)
    out = _run(python, "-c", f"import pyterrier as pt; a = pt.Artifact.load({str(model)!r}); "
                             "print(type(a).__name__, a.path, a.encode_queries(['x']).shape)")
    assert out.stdout.split() == ["DenseEncoder", str(model), "(1,", "32)"]


def test_editable_install_registers_ids_when_ir_datasets_is_imported(source, tmp_path):
    python = _fresh_venv(tmp_path / "venv")
    _run(python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q", "-e", str(source))
    assert _check_hook(python) == source / "datasets_ext" / "__init__.py"
    # editable: the sources are the checkout's
    out = _run(python, "-c", "import datasets_ext_startup; print(datasets_ext_startup.__file__)")
    assert Path(out.stdout.strip()) == source / "datasets_ext_startup.py"


def test_hook_is_a_no_op_when_ir_datasets_is_already_registered():
    # in this process ir_datasets and datasets_ext are imported: install() registers at once, idempotently
    import ir_datasets

    import datasets_ext  # noqa: F401
    import datasets_ext_startup

    datasets_ext_startup.install()
    assert not datasets_ext_startup.installed()
    assert "xquad-r/ar-en" in ir_datasets.registry._registered
