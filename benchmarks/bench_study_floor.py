"""The arithmetic floor of the language-pair study: how much the network must compute to encode a
whole benchmark the way ``evaluate`` does, the shortest time the CPU's peak allows for it, and what
a study-time target demands of the network.

The study's encoding path runs for real (prompts, candidate texts, the vector-cache order,
sentence-transformers' length sort, the batch sizes of each backend on this CPU kind), but the
network is replaced by a probe that records each batch's padded and real token counts and returns
a constant: no arithmetic is done, so the script takes the tokenizer's time only (about a minute
for XQuAD-R) and may run while the machine is busy. FLOPs per batch come from the model config
(``_peak.py``: linear layers and attention products); the peak from the vector width, FMA units and
clock. With ``--study-json`` (a ``bench_study.py --compare-backends`` result of this CPU kind) it
also reports the fraction of peak each measured backend reached and the fraction a target ratio
against torch fp32 would require:

    required fraction = FLOPs / ((target x fp32 study s - non-network s) x peak)

Run: ``LAREQA_DATA_DIR=/work/shared/data python benchmarks/bench_study_floor.py --study-json
benchmarks/results/study_xquad-r-avx512-bf16.json``. Prints tables and writes JSON
(``benchmarks/results/study_floor_<benchmark>-<kind>.json`` by default).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch
from _common import RESULTS, finish, machine, now, table, versions
from _peak import batch_flops, linear_flops_per_token, peak


class _CountingNetwork:
    """Installed as the network's ``forward``: counts batches, padded and real tokens and FLOPs,
    computes nothing (returns ones of the hidden size)."""

    def __init__(self, config: Any):
        self.config = config
        self.stats = {"batches": 0, "padded_tokens": 0, "real_tokens": 0, "flops": 0, "token_sorted_padded_tokens": 0,
                      "token_sorted_flops": 0}
        self.lengths: list[int] = []  # real tokens of each text of the current encode call

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_: Any) -> dict:
        b, n = input_ids.shape
        self.stats["batches"] += 1
        self.stats["padded_tokens"] += b * n
        self.stats["real_tokens"] += int(attention_mask.sum()) if attention_mask is not None else b * n
        self.stats["flops"] += batch_flops(self.config, b, n)
        self.lengths += attention_mask.sum(1).tolist() if attention_mask is not None else [n] * b
        return {"last_hidden_state": torch.ones(b, n, self.config.hidden_size)}

    def end_call(self, batch_size: int) -> None:
        """Adds what the encode call just counted would cost in batches sorted by token count (the
        best any length bucketing of these texts at this batch size can do), and starts a new call."""
        lengths = sorted(self.lengths, reverse=True)
        for i in range(0, len(lengths), batch_size):
            chunk = lengths[i:i + batch_size]
            self.stats["token_sorted_padded_tokens"] += chunk[0] * len(chunk)
            self.stats["token_sorted_flops"] += batch_flops(self.config, len(chunk), chunk[0])
        self.lengths = []


def count(enc: Any, langs: dict, kind: str, batch_size: int) -> dict[str, int]:
    """What the network computes to encode every language's questions (``kind`` query) or candidates
    (``doc``) at ``batch_size``, in the study's order and with its texts."""
    net = enc.model[0].auto_model
    probe = _CountingNetwork(net.config)
    net.forward = probe
    try:
        for data in langs.values():
            if kind == "query":
                enc.encode_queries(list(data.queries), batch_size, verbose=False)
            else:
                texts = [enc.doc_text({"text": t, "context": c}) for t, c in zip(data.docs, data.contexts, strict=True)]
                enc.encode_docs(texts, batch_size, verbose=False)
            probe.end_call(batch_size)
    finally:
        del net.forward
    return probe.stats


def _backend_rows(enc: Any, langs: dict, study: dict | None) -> dict[str, dict[str, Any]]:
    """Per backend of the study JSON (else torch and auto): its batch sizes and the counts at them."""
    from pyterrier_hybrid.backends import choose_backend, default_batch_size

    names = list((study or {}).get("compare_backends", {})) or ["torch", "auto"]
    rows: dict[str, dict[str, Any]] = {}
    per_token = linear_flops_per_token(enc.model[0].auto_model.config)
    for name in names:
        resolved = choose_backend(name).backend if name == "auto" else name
        sizes = {k: default_batch_size(resolved, kind=k) for k in ("query", "document")}
        q = count(enc, langs, "query", sizes["query"])
        d = count(enc, langs, "doc", sizes["document"])
        rows[name] = {"backend": resolved, "batch_sizes": sizes, "queries": q, "docs": d,
                      **{k: q[k] + d[k] for k in ("batches", "padded_tokens", "real_tokens", "flops",
                                                  "token_sorted_padded_tokens", "token_sorted_flops")}}
        rows[name]["unpadded_flops"] = rows[name]["real_tokens"] * per_token  # no padding, no attention: a bound
    return rows


def _fractions(rows: dict[str, dict], study: dict, pk: dict, non_network_s: float, targets: list[float]) -> None:
    """Adds the measured fraction of peak (network time = study time - non-network time) and, for
    each target ratio, the fraction of peak the network would have to reach."""
    cmp = study["compare_backends"]
    fp32_s = cmp["torch"]["study_s"]
    for name, row in rows.items():
        precision = "bf16" if row["backend"].endswith("bf16") else "fp32"
        gflops = pk[f"{precision}_gflops"]
        row["peak_precision"] = precision
        row["floor_s"] = row["flops"] / (gflops * 1e9)
        row["floor_unpadded_s"] = row["unpadded_flops"] / (gflops * 1e9)
        if name in cmp:
            net_s = cmp[name]["study_s"] - non_network_s
            row["study_s"] = cmp[name]["study_s"]
            row["fraction_of_peak"] = row["flops"] / net_s / (gflops * 1e9)
        row["required_fraction"] = {}
        for t in targets:
            budget = t * fp32_s - non_network_s
            row["required_fraction"][str(t)] = row["flops"] / budget / (gflops * 1e9) if budget > 0 else float("inf")
            row.setdefault("required_fraction_unpadded", {})[str(t)] = (
                row["unpadded_flops"] / budget / (gflops * 1e9) if budget > 0 else float("inf"))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--benchmark", default="xquad-r", choices=["xquad-r", "mlqa-r"])
    ap.add_argument("--languages", default="", help="comma-separated (default: all of the benchmark)")
    ap.add_argument("--model", default=None, help="model spec or directory (default: the offline default)")
    ap.add_argument("--study-json", type=Path, help="a bench_study.py --compare-backends result of this CPU kind")
    ap.add_argument("--non-network-s", type=float, default=None,
                    help="study seconds outside the network (scoring, measuring, tokenizing; default: the "
                         "study JSON's warm-cache time if it has one, else 0, which flatters the target)")
    ap.add_argument("--targets", default="0.25", help="study-time ratios against torch fp32 to check")
    ap.add_argument("--out", type=Path)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = _parse(argv)
    from pyterrier_hybrid import DenseEncoder
    from pyterrier_hybrid.cpu import cpu_features, cpu_kind
    from pyterrier_hybrid.study_data import load_languages

    load = os.getloadavg()
    study = json.loads(args.study_json.read_text()) if args.study_json else None
    langs = load_languages(args.benchmark, [x for x in args.languages.split(",") if x] or None)
    enc = DenseEncoder(args.model, backend="torch", cache=False, verbose=False)
    rows = _backend_rows(enc, langs, study)
    pk = peak(cpu_features())
    non_network = args.non_network_s
    if non_network is None:
        non_network = float((study or {}).get("times", {}).get("study_scoring_measuring_s", 0.0))
    targets = [float(t) for t in args.targets.split(",") if t]
    if study:
        _fractions(rows, study, pk, non_network, targets)
    else:
        for row in rows.values():
            precision = "bf16" if row["backend"].endswith("bf16") else "fp32"
            row["peak_precision"], row["floor_s"] = precision, row["flops"] / (pk[f"{precision}_gflops"] * 1e9)
            row["floor_unpadded_s"] = row["unpadded_flops"] / (pk[f"{precision}_gflops"] * 1e9)
    n_q = sum(len(d.queries) for d in langs.values())
    n_d = sum(len(d.docs) for d in langs.values())
    header = ["backend", "batch q/d", "padded tok", "padding", "token-sorted padding", "TFLOP", "floor s", "unpadded floor s", "study s",
              "of peak", *[f"needs x{t}" for t in targets], *[f"unpadded x{t}" for t in targets]]
    text = "\n".join([
        f"{args.benchmark}: {len(langs)} languages, {n_q} questions, {n_d} candidates; peak {pk['fp32_gflops']:.0f} "
        f"GFLOP/s fp32, {pk['bf16_gflops']:.0f} bf16 ({pk['basis']}, {pk['cores']} cores at {pk['clock_ghz']:.2f} GHz)",
        table(header, [[name, f"{r['batch_sizes']['query']}/{r['batch_sizes']['document']}", r["padded_tokens"],
                        f"{1 - r['real_tokens'] / r['padded_tokens']:.1%}",
                        f"{1 - r['real_tokens'] / r['token_sorted_padded_tokens']:.1%}", r["flops"] / 1e12,
                        f"{r['floor_s']:.1f} ({r['peak_precision']})", f"{r['floor_unpadded_s']:.1f}",
                        r.get("study_s", ""),
                        f"{r['fraction_of_peak']:.1%}" if "fraction_of_peak" in r else "",
                        *[f"{r['required_fraction'][str(t)]:.0%}" if "required_fraction" in r else ""
                          for t in targets],
                        *[f"{r['required_fraction_unpadded'][str(t)]:.0%}" if "required_fraction_unpadded" in r
                          else "" for t in targets]] for name, r in rows.items()]),
        f"non-network seconds assumed: {non_network:.1f}"])
    record = {"date": now(), "machine": machine(load), "versions": versions(),
              "parameters": {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                             "non_network_s": non_network},
              "benchmark": {"name": args.benchmark, "languages": list(langs), "questions": n_q, "candidates": n_d},
              "peak": pk, "backends": rows}
    out = args.out or RESULTS / f"study_floor_{args.benchmark}-{cpu_kind(cpu_features())}.json"
    return finish(record, out, text)


if __name__ == "__main__":
    main()
