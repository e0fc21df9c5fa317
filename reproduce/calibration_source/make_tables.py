"""Centring means from the other benchmark vs from the evaluated candidates (issue 15), from committed
files only: docs/calibration_source/seed_summary.csv (written by run.py).

    python reproduce/calibration_source/make_tables.py
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parents[2] / "docs" / "calibration_source"  # the committed outputs
LABELS = {"base": "untuned", "hybrid-a0.50": "hybrid 0.5", "hybrid-a0.50+wise0.5": "hybrid 0.5 + WiSE 0.5"}


def _cell(r: pd.Series, digits: int) -> str:
    return f"{r['mean']:.{digits}f}" + (f" ± {r['ci95']:.{digits}f}" if r["n_seeds"] > 1 else "")


def main() -> None:
    s = pd.read_csv(HERE / "seed_summary.csv")
    print("| direction (evaluated, 7 shared languages) | model | none | center: own candidates | center: other "
          "benchmark | rank distance: none / own / other |")
    print("|---|---|---:|---:|---:|---|")
    for direction in s.direction.unique():
        d = s[s.direction == direction]
        own, other = (d[d.means == m] for m in d.means.unique())
        bench = "XQuAD-R, means from MLQA-R" if direction == "forward" else "MLQA-R, means from XQuAD-R"
        for conf, label in LABELS.items():
            if conf not in set(own.configuration):
                continue

            def get(frame: pd.DataFrame, c: str, m: str) -> pd.Series:
                return frame[(frame.configuration == c) & (frame.measure == m)].iloc[0]

            cells = [_cell(get(own, conf, "multi_map"), 3), _cell(get(own, conf + "+center", "multi_map"), 3),
                     _cell(get(other, conf + "+center", "multi_map"), 3)]
            rd = " / ".join(_cell(get(f, c, "rank_distance"), 0)
                            for f, c in ((own, conf), (own, conf + "+center"), (other, conf + "+center")))
            print(f"| {bench} | {label} | " + " | ".join(cells) + f" | {rd} |")


if __name__ == "__main__":
    main()
