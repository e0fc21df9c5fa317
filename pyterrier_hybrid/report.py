"""Study outputs: results.json, per_query.parquet, pairs.csv, report.md and PNG figures.

``results.json`` schema (``"schema": "pyterrier-hybrid/study/v1"``):

- ``benchmark``, ``languages``, ``settings``, ``config`` (models with fingerprints, options);
- ``systems``: one entry per model, each with ``name``, ``summary`` (``mono_map``,
  ``cross_map``, ``multi_map``, ``{setting}_R@1``, ``{setting}_R@10``, ``rank_distance``: macro
  averages over language pairs / query languages), ``pairs`` (entries with ``query_lang``,
  ``doc_lang``, ``setting``, ``map``, ``n_queries`` and every other measure by its
  ir_measures name), ``rank_distance_by_lang``;
- ``summary`` and ``pairs``: those of ``systems[0]`` (the baseline), for single-model use;
- ``significance``: paired t-tests against the baseline (when there are several systems).

All files are written atomically (temp file in the same directory, then rename).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .figures import save_png, subplots
from .fs import (  # re-exported: benchmarks and older code import them here
    atomic_dir,
    atomic_write,
    public_mode,
)

if TYPE_CHECKING:
    from .results import StudyResult

__all__ = ["atomic_write", "public_mode", "read_outputs", "summary_table", "write_outputs"]

SCHEMA = "pyterrier-hybrid/study/v1"
LABELS = {"mono_map": "Mo.", "cross_map": "Cr.", "multi_map": "Mul.", "rank_distance": "RankDist"}


def clean_json(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and NaN as ``None`` (strict JSON)."""
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _system_json(result: StudyResult, name: str) -> dict:
    pairs = result.pairs()
    pairs = pairs[pairs.system == name].drop(columns="system").rename(columns={"AP": "map"})
    summary = result.summary().loc[name].to_dict()
    entry = {"name": name, "summary": summary, "pairs": pairs.to_dict("records")}
    if "multi" in result.settings:
        entry["rank_distance_by_lang"] = result.rank_distance()[name].to_dict()
    return entry


def summary_table(result: StudyResult) -> pd.DataFrame:
    """Paper Table 1 (+ Table 2's overall rank distance): one row per system."""
    s = result.summary()
    cols = [c for c in LABELS if c in s.columns]
    return s[cols].rename(columns=LABELS)


def _markdown(result: StudyResult, figures: list[str], sig: pd.DataFrame | None) -> str:
    lines = [f"# {result.benchmark}: language-pair evaluation", ""]
    cfg = result.config
    lines += [f"Languages: {', '.join(result.languages)}. Settings: {', '.join(result.settings)}."
              + (f" First {cfg['limit_queries']} questions per language." if cfg.get("limit_queries") else ""), ""]
    lines += ["## Summary (mAP macro-averaged over language pairs; rank distance in the multilingual pool)", "",
              summary_table(result).to_markdown(floatfmt=".4f"), ""]
    for name in result.systems:
        lines += [f"## {name}: mAP per query language", "",
                  result.by_language().loc[name].to_markdown(floatfmt=".4f"), ""]
    if "multi" in result.settings:
        lines += ["## Rank distance per query language (lower = less language bias)", "",
                  result.rank_distance().to_markdown(floatfmt=".2f"), ""]
    elif len(result.languages) == 1:
        lines += [f"One language ({result.languages[0]}): only the monolingual setting applies; cross-lingual, "
                  "multilingual and rank distance need two or more languages.", ""]
    if sig is not None:
        top = sig[sig.level == "setting"][["system", "setting", "baseline_mean", "system_mean", "n_units", "+", "-",
                                           "p_value", "p_corrected", "reject"]]
        lines += ["## Significance against the baseline (paired t-test, unit: the question, its language pairs "
                  "averaged first; Holm-corrected)", "",
                  top.to_markdown(index=False, floatfmt=".4g"), ""]
    lines += [f"![{f}]({f})" for f in figures]
    return "\n".join(lines) + "\n"


def _heatmap(result: StudyResult, name: str, path: Path) -> None:

    p = result.pairs()
    p = p[p.system == name]
    cols = [lang for lang in result.languages if lang in set(p.doc_lang)] + (["multi"] if "multi" in result.settings else [])
    m = p.pivot_table(index="query_lang", columns="doc_lang", values="AP").reindex(index=list(result.languages), columns=cols)
    fig, ax = subplots(figsize=(1 + 0.6 * len(cols), 1 + 0.5 * len(m)))
    im = ax.imshow(m.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(m)), m.index)
    ax.set_xlabel("corpus language")
    ax.set_ylabel("query language")
    for (i, j), v in np.ndenumerate(m.to_numpy(dtype=float)):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w" if v < 0.6 else "k")
    fig.suptitle(f"{result.benchmark} mAP: {name}", fontsize="medium")  # centred on the figure, widened to fit
    fig.colorbar(im, ax=ax, fraction=0.04)
    save_png(fig, path)


def _rank_distance_plot(result: StudyResult, path: Path) -> None:

    rd = result.rank_distance()
    fig, ax = subplots(figsize=(2 + 0.7 * len(rd), 3.5))
    width = 0.8 / len(rd.columns)
    x = np.arange(len(rd))
    for k, name in enumerate(rd.columns):
        ax.bar(x + k * width, rd[name].to_numpy(), width, label=name)
    ax.set_xticks(x + width * (len(rd.columns) - 1) / 2, rd.index)
    ax.set_xlabel("query language")
    ax.set_ylabel("mean rank distance")
    ax.set_title(f"{result.benchmark}: language bias (lower is better)")
    ax.legend(fontsize=7)
    save_png(fig, path)


#: The files of a study's output set (plus ``heatmap*.png``).
OUTPUT_SET = ("results.json", "per_query.parquet", "pairs.csv", "significance.csv", "report.md", "rank_distance.png")


def _in_set(name: str) -> bool:
    return name in OUTPUT_SET or (name.startswith("heatmap") and name.endswith(".png"))


def write_outputs(result: StudyResult, out: str | os.PathLike, *, correction: str | None = "holm",
                  figures: bool = True) -> Path:
    """Write every output file of a study into ``out`` as one set (``figures=False``: without the
    PNG figures, e.g. for per-run studies that are combined later): built in a temporary directory,
    then published whole, so a failure (a full disk) leaves an earlier study's set there intact and
    never a mix. A directory holding only such a set is swapped in one step; one that holds other
    files too keeps them and gets the new set file by file (renames only, after everything was
    written; files of the earlier set that this one does not produce are removed). Returns ``out``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"the output directory {out} is a file, not a directory")
    sig = result.significance(correction=correction) if len(result.systems) > 1 else None
    if not out.is_dir() or all(_in_set(p.name) for p in out.iterdir()):
        with atomic_dir(out, replace=True) as tmp:
            _write_set(result, tmp, sig, figures)
        return out
    tmp = out / f".new-outputs.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    try:
        _write_set(result, tmp, sig, figures)
        new = {p.name for p in tmp.iterdir()}
        for stale in out.iterdir():
            if _in_set(stale.name) and stale.name not in new:
                stale.unlink()
        for name in sorted(new):
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def read_outputs(out: str | os.PathLike) -> StudyResult:
    """The study that :func:`write_outputs` wrote into ``out`` (``results.json`` and
    ``per_query.parquet``): every table of :class:`StudyResult` is recomputed from its rows."""
    from .results import StudyResult

    out = Path(out)
    missing = [n for n in ("results.json", "per_query.parquet") if not (out / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{out} holds no study output set: {' and '.join(missing)} missing "
                                "(write one with write_outputs(result, out) or evaluate(..., out=out))")
    doc = json.loads((out / "results.json").read_text())
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"{out / 'results.json'} has schema {doc.get('schema')!r}; this version reads {SCHEMA!r}")
    per_query = pd.read_parquet(out / "per_query.parquet")
    return StudyResult(doc["benchmark"], tuple(doc["languages"]), tuple(doc["settings"]), per_query,
                       [s["name"] for s in doc["systems"]], config=doc["config"])


def _write_set(result: StudyResult, out: Path, sig: pd.DataFrame | None, with_figures: bool = True) -> None:
    """The output files into the (new, empty) directory ``out``."""
    figures = []
    for i, name in enumerate(result.systems if with_figures else []):
        fname = f"heatmap_{i}.png" if len(result.systems) > 1 else "heatmap.png"
        _heatmap(result, name, out / fname)
        figures.append(fname)
    if with_figures and "multi" in result.settings:
        _rank_distance_plot(result, out / "rank_distance.png")
        figures.append("rank_distance.png")
    systems = [_system_json(result, n) for n in result.systems]
    doc = {"schema": SCHEMA, "benchmark": result.benchmark, "languages": list(result.languages),
           "settings": list(result.settings), "config": result.config, "systems": systems,
           "summary": systems[0]["summary"], "pairs": systems[0]["pairs"]}
    if sig is not None:
        doc["significance"] = sig.to_dict("records")
    atomic_write(out / "results.json", lambda p: p.write_text(json.dumps(clean_json(doc), indent=1, ensure_ascii=False)))
    atomic_write(out / "per_query.parquet", lambda p: result.per_query.to_parquet(p, index=False))
    atomic_write(out / "pairs.csv", lambda p: result.pairs().to_csv(p, index=False))
    if sig is not None:
        atomic_write(out / "significance.csv", lambda p: sig.to_csv(p, index=False))
    atomic_write(out / "report.md", lambda p: p.write_text(_markdown(result, figures, sig)))
