"""A one-language study (a natural first try): monolingual only, said once, outputs complete or absent."""

from __future__ import annotations

import json
import warnings

import pytest

from pyterrier_hybrid import evaluate
from pyterrier_hybrid.cli import main as cli_main

pytestmark = pytest.mark.slow


def test_one_language_is_monolingual_said_once(default_encoder, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = evaluate(default_encoder, languages=["en"], limit_queries=20, verbose=False, out=tmp_path / "o")
    said = [w for w in caught if "one language (en)" in str(w.message)]
    assert len(said) == 1 and "rank distance" in str(said[0].message)
    assert res.settings == ("mono",)
    assert res.pairs()[["setting", "query_lang", "doc_lang", "n_queries"]].values.tolist() == [["mono", "en", "en", 20]]
    s = res.summary().iloc[0]
    assert s.mono_map > 0.7 and "rank_distance" not in s  # the real model on English questions
    files = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert files == ["heatmap.png", "pairs.csv", "per_query.parquet", "report.md", "results.json"]
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["settings"] == ["mono"] and doc["summary"]["mono_map"] == pytest.approx(s.mono_map)
    assert "only the monolingual setting applies" in (tmp_path / "o" / "report.md").read_text()
    # the explicit request says nothing; other settings alone are an error naming the fix
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert evaluate(default_encoder, languages=["en"], settings=["mono"], limit_queries=20,
                        verbose=False).summary().iloc[0].mono_map == s.mono_map
    with pytest.raises(ValueError, match="need two or more languages.*add a language or evaluate the mono"):
        evaluate(default_encoder, languages=["en"], settings=["cross", "multi"], verbose=False)


def test_cli_one_language(default_model_dir, tmp_path, capsys):
    code = cli_main(["evaluate", "--model", str(default_model_dir), "--languages", "en", "--limit-queries", "20",
                     "--out", str(tmp_path / "o")])
    out = capsys.readouterr()
    assert code == 0 and "Mo." in out.out and "RankDist" not in out.out and "rank distance" not in out.out
    assert (tmp_path / "o" / "results.json").is_file() and not (tmp_path / "o" / "rank_distance.png").exists()


def test_failed_outputs_leave_the_directory_as_it_was(default_encoder, tmp_path, monkeypatch):
    import pyterrier_hybrid.report as report

    res = evaluate(default_encoder, languages=["en"], settings=["mono"], limit_queries=20, verbose=False)
    out = tmp_path / "o"
    out.mkdir()
    (out / "results.json").write_text("earlier study")
    (out / "heatmap.png").write_bytes(b"earlier figure")

    def broken(*args, **kwargs):
        raise RuntimeError("report failed")

    monkeypatch.setattr(report, "_markdown", broken)  # the last file: everything else was made by then
    with pytest.raises(RuntimeError, match="report failed"):
        report.write_outputs(res, out)
    assert sorted(p.name for p in out.iterdir()) == ["heatmap.png", "results.json"]
    assert (out / "results.json").read_text() == "earlier study"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]  # no temp directory left
    monkeypatch.undo()
    report.write_outputs(res, out)
    assert json.loads((out / "results.json").read_text())["languages"] == ["en"]
