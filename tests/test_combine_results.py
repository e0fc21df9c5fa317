"""Studies evaluated one model at a time, written, read back and combined: the same tables as one
study of all the models (what a chain of training runs does when each run is scored as it finishes)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pyterrier_hybrid import DenseEncoder, VectorCache, combine_results, evaluate, read_outputs, write_outputs

OPTIONS = {"benchmark": "mlqa-r", "languages": ["de", "es"], "limit_queries": 25, "calibration": "none,center",
           "verbose": False}


@pytest.fixture(scope="module")
def encoders(tiny_model_dir, tmp_path_factory):
    cache = VectorCache(tmp_path_factory.mktemp("vectors"))
    return (DenseEncoder(str(tiny_model_dir), cache=cache),
            DenseEncoder(str(tiny_model_dir), cache=cache, prompts="none"))


def test_one_model_at_a_time_equals_one_study(encoders, tmp_path):
    a, b = encoders
    joint = evaluate([a, b], names=["a", "b"], **OPTIONS)
    write_outputs(evaluate(a, names=["a"], **OPTIONS), tmp_path / "a")
    write_outputs(evaluate(b, names=["b"], **OPTIONS), tmp_path / "b", figures=False)
    assert not list((tmp_path / "b").glob("*.png")) and list((tmp_path / "a").glob("*.png"))
    combined = combine_results([read_outputs(tmp_path / "a"), read_outputs(tmp_path / "b")])
    assert combined.systems == joint.systems == ["a", "a+center", "b", "b+center"]
    pd.testing.assert_frame_equal(combined.per_query, joint.per_query)
    pd.testing.assert_frame_equal(combined.summary(), joint.summary())
    pd.testing.assert_frame_equal(combined.by_language(), joint.by_language())
    assert [m["name"] for m in combined.config["models"]] == ["a", "b"] and combined.config["combined"] == 2
    # the two systems differ (prompts), so the combination is not one study read twice
    assert not combined.summary().loc["a"].equals(combined.summary().loc["b"])


def test_read_outputs_round_trip(encoders, tmp_path):
    res = evaluate(encoders[0], names=["a"], **OPTIONS)
    back = read_outputs(write_outputs(res, tmp_path / "out"))
    assert (back.benchmark, back.languages, back.settings, back.systems) == \
        (res.benchmark, res.languages, res.settings, res.systems)
    pd.testing.assert_frame_equal(back.per_query, res.per_query)
    pd.testing.assert_frame_equal(back.pairs(), res.pairs())
    assert back.config["calibration"] == ["none", "center"]


def test_combining_different_evaluations_is_refused(encoders, tmp_path):
    a, b = encoders
    ra = evaluate(a, names=["a"], **OPTIONS)
    other = evaluate(b, names=["b"], **{**OPTIONS, "languages": ["de", "ar"]})
    with pytest.raises(ValueError, match=r"differ in .*languages.*must agree on"):
        combine_results([ra, other])
    nocal = evaluate(b, names=["b"], **{**OPTIONS, "calibration": "none"})
    with pytest.raises(ValueError, match=r"differ in calibration \(\['none', 'center'\] vs \['none'\]\)"):
        combine_results([ra, nocal])
    with pytest.raises(ValueError, match=r"more than one result: a, a\+center .*names="):
        combine_results([ra, ra])
    with pytest.raises(ValueError, match="at least one"):
        combine_results([])


def test_read_outputs_errors(tmp_path, encoders):
    with pytest.raises(FileNotFoundError, match=r"results.json and per_query.parquet missing"):
        read_outputs(tmp_path)
    out = write_outputs(evaluate(encoders[0], names=["a"], **{**OPTIONS, "limit_queries": 5}), tmp_path / "o")
    doc = json.loads((out / "results.json").read_text())
    (out / "results.json").write_text(json.dumps({**doc, "schema": "something/else"}))
    with pytest.raises(ValueError, match="schema 'something/else'; this version reads 'pyterrier-hybrid/study/v1'"):
        read_outputs(out)


def test_cli_combine(encoders, tmp_path, capsys):
    from pyterrier_hybrid.cli import main

    a, b = encoders
    joint = evaluate([a, b], names=["a", "b"], **OPTIONS)
    write_outputs(evaluate(a, names=["a"], **OPTIONS), tmp_path / "a", figures=False)
    write_outputs(evaluate(b, names=["b"], **OPTIONS), tmp_path / "b", figures=False)
    assert main(["combine", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "ab")]) == 0
    assert "Mul." in capsys.readouterr().out
    back = read_outputs(tmp_path / "ab")
    pd.testing.assert_frame_equal(back.summary(), joint.summary())
    assert (tmp_path / "ab" / "significance.csv").is_file() and list((tmp_path / "ab").glob("heatmap_*.png"))
    assert main(["combine", str(tmp_path / "a"), str(tmp_path / "a")]) == 2
    assert "more than one result: a, a+center" in capsys.readouterr().err
    assert main(["combine", str(tmp_path / "nothing")]) == 2
    assert "holds no study output set" in capsys.readouterr().err
