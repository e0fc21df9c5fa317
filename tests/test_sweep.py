"""The reproduction sweep: run planning, the whole pipeline on a tiny model (plumbing only),
reuse and resume, and refusals."""

from __future__ import annotations

import importlib
import json

import pytest

import pyterrier_hybrid
from pyterrier_hybrid.experiments.alpha_sweep import SweepRun, plan_runs, sweep
from pyterrier_hybrid.train_config import TrainConfig

runs_mod = importlib.import_module("pyterrier_hybrid.experiments.runs")


def test_sweep_is_the_packages_function():
    # the experiments live in their own modules, so the package attribute is the function itself
    assert pyterrier_hybrid.sweep is sweep and pyterrier_hybrid.experiments.sweep is sweep
    with pytest.raises(ValueError, match="at least one alpha"):
        pyterrier_hybrid.sweep(alphas=[])


def test_plan_runs_names_and_order():
    runs = plan_runs([0.25, 0.5, 0, 1, 0.75, 0.5])
    assert runs == [SweepRun("x-x-mono", "x-x-mono", 1.0), SweepRun("x-y", "x-y", 0.0),
                    SweepRun("hybrid-a0.50", "hybrid", 0.5), SweepRun("hybrid-a0.75", "hybrid", 0.75),
                    SweepRun("hybrid-a0.25", "hybrid", 0.25)]
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        plan_runs([0.5, 1.5])
    with pytest.raises(ValueError, match="at least one alpha"):
        plan_runs([])


@pytest.fixture(scope="module")
def tiny_sweep(tiny_model_dir, data_dir, tmp_path_factory):
    """One sweep of the tiny model: 3 strategies x 2 steps, evaluated on 5 questions of de, en. Plumbing
    only, so trained on the first 200 examples (a 20-question validation set, not 115)."""
    out = tmp_path_factory.mktemp("sweep")
    mp = pytest.MonkeyPatch()
    mp.setenv("PYTERRIER_HYBRID_HOME", str(out / "home"))
    kw = dict(model=str(tiny_model_dir), alphas=(1.0, 0.0, 0.5), steps=2, batch_size=4, train_languages=["en", "de", "es"],
              keep_checkpoints=True, max_examples=200,
              eval_languages=["de", "en"], limit_queries=5, out=out, verbose=False)
    try:
        result = sweep(**kw)
    finally:
        mp.undo()
    return out, kw, result


def test_sweep_writes_study_and_report(tiny_sweep):
    out, _, result = tiny_sweep
    assert result.systems == ["base", "x-x-mono", "x-y", "hybrid-a0.50"]
    for name in ("x-x-mono", "x-y", "hybrid-a0.50"):
        cfg = json.loads((out / "train-mlqa-r" / name / "train_config.json").read_text())
        assert cfg["options"]["steps"] == 2 and cfg["options"]["batch_size"] == 4 and cfg["options"]["seed"] == 0
        assert cfg["result"]["best_checkpoint"]  # chosen by the validation loss
        assert cfg["options"]["keep"] == "best" and cfg["result"]["kept_checkpoint"] == cfg["result"]["best_checkpoint"]
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["schema"] == "pyterrier-hybrid/sweep/v1"
    assert [r["system"] for r in doc["summary"]] == result.systems
    assert {r["alpha"] for r in doc["runs"].values()} == {1.0, 0.0, 0.5}
    assert all(r["train_seconds"] > 0 and r["best_eval_loss"] > 0 for r in doc["runs"].values())
    # significance against the untuned model and against the hybrid, per setting
    pairs = {(r["system"], r["baseline"], r["setting"]) for r in doc["significance"]}
    assert ("hybrid-a0.50", "base", "multi") in pairs and ("x-y", "hybrid-a0.50", "cross") in pairs
    md = (out / "sweep.md").read_text()
    assert "Table 1" in md and "Table 2" in md and "x-x-mono" in md
    assert "checkpoint chosen by validation loss every 1 steps" in md and "| kept " in md
    assert (out / "alpha_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "eval-xquad-r" / "results.json").read_text())["config"]["limit_queries"] == 5
    assert (out / "tradeoff.png").read_bytes()[:4] == b"\x89PNG" and "Monolingual cost" in md


def test_mono_cost_agrees_with_the_pair_table(tiny_sweep):
    import pandas as pd

    from pyterrier_hybrid import mono_cost

    out, _, result = tiny_sweep
    cost = mono_cost(result)
    assert sorted(zip(cost.system, cost.query_lang, strict=True)) == sorted((s, q) for s in result.systems[1:] for q in ("de", "en"))
    pairs = result.pairs()
    mono = pairs[pairs.setting == "mono"].set_index(["system", "query_lang"])["AP"]
    by_lang = result.by_language()
    for _, r in cost.iterrows():
        assert r["mono_change"] == pytest.approx(mono[(r["system"], r["query_lang"])] - mono[("base", r["query_lang"])])
        assert r["multi_gain"] == pytest.approx(by_lang.loc[(r["system"], r["query_lang"]), "multi"]
                                                - by_lang.loc[("base", r["query_lang"]), "multi"])
        assert 0 <= r["p_corrected"] <= 1 or pd.isna(r["p_corrected"])
    assert pd.read_csv(out / "mono_cost.csv").shape[0] == len(cost)


def test_sweep_reuses_and_resumes(tiny_sweep, monkeypatch):
    out, kw, _ = tiny_sweep
    monkeypatch.setenv("PYTERRIER_HYBRID_HOME", str(out / "home"))
    calls = []
    real_train = runs_mod.train
    monkeypatch.setattr(runs_mod, "train", lambda *a, **k: calls.append((a[2], k)) or real_train(*a, **k))
    sweep(**kw)
    assert calls == []  # every model finished with the same options: reused
    # an interrupted run (checkpoints, no final model) resumes from its last checkpoint
    import shutil

    shutil.rmtree(out / "train-mlqa-r" / "x-y" / "model")
    sweep(**kw)
    assert [(config.alpha, k["resume"]) for config, k in calls] == [(0.0, True)]


def test_sweep_refusals(tiny_sweep):
    out, kw, _ = tiny_sweep
    with pytest.raises(ValueError, match="other options"):
        sweep(**{**kw, "steps": 3})
    with pytest.raises(ValueError, match=r"other options \(keep 'best' vs 'last'\)"):
        sweep(**{**kw, "keep": "last"})
    with pytest.raises(ValueError, match="not zero-shot"):
        sweep(**{**kw, "eval_benchmark": "mlqa-r"})


def test_runs_without_a_recorded_keep_count_as_best(tiny_sweep):
    """Models trained before ``keep`` existed recorded no such option: they were kept by validation
    loss, and are reused by a ``keep="best"`` sweep."""
    out, _, _ = tiny_sweep
    run = out / "train-mlqa-r" / "x-y"
    cfg_path = run / "train_config.json"
    cfg = json.loads(cfg_path.read_text())
    old = {**cfg, "options": {k: v for k, v in cfg["options"].items() if k != "keep"},
           "result": {k: v for k, v in cfg["result"].items() if k != "kept_checkpoint"}}
    cfg_path.write_text(json.dumps(old))
    try:
        wanted = TrainConfig.from_json(old["options"])
        assert wanted.keep == "best" and wanted.sampling == "x-y"
        assert runs_mod.finished(run, wanted, "mlqa-r")
        with pytest.raises(ValueError, match="keep 'best' vs 'last'"):
            runs_mod.finished(run, TrainConfig.make(wanted, keep="last"), "mlqa-r")
        with pytest.raises(ValueError, match="source 'mlqa-r' vs 'xquad-r'"):
            runs_mod.finished(run, wanted, "xquad-r")
        record = runs_mod.training_record(run)
        assert record["keep"] == "best" and record["kept_checkpoint"] == cfg["result"]["best_checkpoint"]
    finally:
        cfg_path.write_text(json.dumps(cfg))


def test_cli_sweep_bad_alpha(capsys):
    from pyterrier_hybrid.cli import main

    assert main(["sweep", "--alphas", "0.5,1.5", "--out", "/nonexistent/never-written"]) == 2
    assert "alpha must be in [0, 1]" in capsys.readouterr().err


def test_cost_table_keeps_signs_and_stars():
    """A strategy with no significant loss keeps its written signs (tabulate must not re-parse them)."""
    import pandas as pd

    from pyterrier_hybrid.experiments.alpha_sweep import _cost_table

    cost = pd.DataFrame({"system": ["a", "a", "b", "b"], "query_lang": ["de", "en"] * 2,
                         "mono_change": [0.0158, -0.0027, -0.045, 0.01], "significant": [False, False, True, False],
                         "cross_gain": [0.09, 0.08, 0.06, 0.07], "multi_gain": [0.1, 0.2, 0.1, 0.1]})
    md = _cost_table(cost)
    assert "+0.0158" in md and "-0.0450*" in md and "+0.0850" in md  # a's mean cross gain, sign kept


def test_seeded_sweep_with_wise_and_calibration(tiny_model_dir, data_dir, tmp_path, monkeypatch):
    """Seeds x strategies, WiSE-FT models and calibration in one report (tiny model: plumbing only; the
    first 200 training examples, as in ``tiny_sweep``)."""
    import pandas as pd

    from pyterrier_hybrid.experiments.seeds import configuration, seed_of

    monkeypatch.setenv("PYTERRIER_HYBRID_HOME", str(tmp_path / "home"))
    kw = dict(model=str(tiny_model_dir), alphas=(1.0, 0.5), seeds=[3, 5], wise=[0.5], calibration="none,center",
              wise_select=[0.5, 1], steps=2, batch_size=4, keep="last", train_languages=["en", "de", "es"],
              eval_languages=["de", "en"], max_examples=200, limit_queries=5, out=tmp_path, verbose=False)
    result = sweep(**kw)
    assert result.systems[:2] == ["base", "base+center"]
    assert "hybrid-a0.50+wise0.5/s5+center" in result.systems and len(result.systems) == 2 * (1 + 4 + 4 + 4)
    choice = json.loads((tmp_path / "merged" / "x-x-mono-seed3-wise-choice.json").read_text())
    assert choice["chosen"] in (0.5, 1.0) and choice["languages"] == ["de", "en", "es"]
    chosen = {"0.5": "x-x-mono+wise0.5/s3", "1": "x-x-mono/s3"}[f"{choice['chosen']:g}"]
    assert result.summary().loc["x-x-mono+wiseval/s3"].equals(result.summary().loc[chosen])
    assert configuration("hybrid-a0.50+wise0.5/s5+center") == "hybrid-a0.50+wise0.5+center"
    assert seed_of("x-x-mono/s3") == 3 and seed_of("base") is None
    for folder in ("x-x-mono-seed3", "hybrid-a0.50-seed5"):
        cfg = json.loads((tmp_path / "train-mlqa-r" / folder / "train_config.json").read_text())
        assert cfg["options"]["seed"] == int(folder[-1]) and cfg["options"]["batch_mix"] == "exact"
        assert sum(cfg["data"]["batches"][k] for k in ("mono", "cross")) == 2
    card = (tmp_path / "train-mlqa-r" / "hybrid-a0.50-seed5" / "model" / "README.md").read_text()
    row = result.summary().loc["hybrid-a0.50/s5"]
    assert f"zero-shot xquad-r (2 languages), first 5 questions per language, mAP: Mo. {row.mono_map:.3f}, Cr. {row.cross_map:.3f}" in card
    assert "with center calibration of the multilingual pool" in card and "seed 5" in card
    merge = json.loads((tmp_path / "merged" / "hybrid-a0.50-seed3-wise0.5" / "merge.json").read_text())
    assert merge["weights"] == [0.5, 0.5] and len(merge["sources"]) == 2
    doc = json.loads((tmp_path / "sweep.json").read_text())
    assert doc["schema"] == "pyterrier-hybrid/seeded-sweep/v1" and doc["options"]["seeds"] == [3, 5]
    summ = pd.read_csv(tmp_path / "seed_summary.csv")
    row = summ[(summ.configuration == "hybrid-a0.50+center") & (summ.measure == "multi_map")].iloc[0]
    per_seed = [result.summary().loc[f"hybrid-a0.50/s{s}+center", "multi_map"] for s in (3, 5)]
    assert row.n_seeds == 2 and row["mean"] == pytest.approx(sum(per_seed) / 2)
    tests = pd.read_csv(tmp_path / "tests.csv")
    seed_rows = tests[tests.unit == "seed"]
    assert set(zip(seed_rows.a, seed_rows.b, strict=True)) >= {("hybrid-a0.50", "x-x-mono"),
                                                              ("hybrid-a0.50+wise0.5+center", "x-x-mono+wise0.5+center")}
    assert (seed_rows.n_seeds == 2).all()
    q = pd.read_parquet(tmp_path / "per_question.parquet")
    assert set(q.setting) == {"mono", "cross", "multi"} and q.question.nunique() == 5
    md = (tmp_path / "sweep.md").read_text()
    assert "mean ± 95 % CI over seeds" in md and "Unit: the seed" in md and (tmp_path / "seeds.png").read_bytes()[:4] == b"\x89PNG"
    # a rerun reuses every trained and merged model
    again = sweep(**kw)
    pd.testing.assert_frame_equal(again.summary(), result.summary())
    with pytest.raises(ValueError, match="seeds must be distinct"):
        sweep(seeds=[1, 1], out=tmp_path)
    with pytest.raises(ValueError, match=r"lambda must be in \(0, 1\)"):
        sweep(wise=[1.0], out=tmp_path)
