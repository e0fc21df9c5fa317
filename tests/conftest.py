"""Shared test setup: the real LAReQA files (offline), an isolated ir_datasets cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Tests read the benchmark files through the project's offline mechanism only.
os.environ.setdefault("LAREQA_DATA_DIR", str(SHARED_DATA))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
_IRDS_HOME = tempfile.mkdtemp(prefix="irds-test-")
os.environ["IR_DATASETS_HOME"] = _IRDS_HOME


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ["LAREQA_DATA_DIR"])
    if not (path / "xquad-r" / "en.json").is_file():
        pytest.fail(f"benchmark files not found under {path}: set LAREQA_DATA_DIR (see README)")
    return path
