"""Model specs: prompt presets, and specs that cannot be resolved offline fail with a useful message."""

from __future__ import annotations

import pytest

from pyterrier_hybrid.models import PROMPT_PRESETS, ModelSpecError, load_model, resolve_prompts


def test_prompt_presets_and_dicts():
    assert resolve_prompts("e5") == {"query": "query: ", "document": "passage: "}
    assert resolve_prompts("e5") is not PROMPT_PRESETS["e5"]  # a copy: callers may edit it
    assert resolve_prompts({"query": "q: "}) == {"query": "q: "} and resolve_prompts(None) is None
    with pytest.raises(ModelSpecError, match="unknown prompt preset 'e6'; valid: e5, paper, none"):
        resolve_prompts("e6")
    with pytest.raises(ModelSpecError, match="prompt keys must be 'query' and 'document'"):
        resolve_prompts({"passage": "p: "})


def test_unresolvable_specs(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelSpecError, match="HF_HUB_OFFLINE is set"):
        load_model("some-org/not-a-cached-model")
    with pytest.raises((ModelSpecError, FileNotFoundError), match="not-there"):
        load_model(str(tmp_path / "not-there"))
