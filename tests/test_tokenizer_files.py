"""A saved model's tokenizer_config.json carries its added tokens (tokenizer_files): the same tokenizer,
loaded without transformers' Python pass over the 17 MB tokenizer.json."""

from __future__ import annotations

import json
import shutil

from transformers import AutoTokenizer

from pyterrier_hybrid.tokenizer_files import complete_tokenizer_config

TEXTS = ["query: Wie hoch ist der Eiffelturm?", "passage: 埃菲尔铁塔高330米。", "ما هو <mask> أطول نهر",
         "<s> two </s> special <pad> tokens <unk>", "हिन्दी भाषा", "ภาษาไทย Türkçe Tiếng Việt"]


def test_the_built_default_model_carries_its_added_tokens(default_model_dir):
    config = json.loads((default_model_dir / "tokenizer_config.json").read_text())
    added = json.loads((default_model_dir / "tokenizer.json").read_text())["added_tokens"]
    assert config["added_tokens_decoder"] == {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in added}
    assert complete_tokenizer_config(default_model_dir) == []  # complete already: nothing rewritten


def test_completing_gives_the_same_tokenizer(default_model_dir, tmp_path):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json"):
        shutil.copyfile(default_model_dir / name, legacy / name)
    config = json.loads((legacy / "tokenizer_config.json").read_text())
    del config["added_tokens_decoder"]  # as transformers 5 writes it
    (legacy / "tokenizer_config.json").write_text(json.dumps(config))
    before = AutoTokenizer.from_pretrained(legacy)
    assert complete_tokenizer_config(legacy) == [legacy / "tokenizer_config.json"]
    after = AutoTokenizer.from_pretrained(legacy)
    assert repr(after) == repr(before) and after.added_tokens_decoder == before.added_tokens_decoder
    assert after(TEXTS, padding=True)["input_ids"] == before(TEXTS, padding=True)["input_ids"]
    assert after.all_special_ids == before.all_special_ids and len(after) == len(before) == 250002


def test_every_saving_place_goes_through_save_model(tiny_model_dir, tmp_path):
    """save_model writes the completed tokenizer config and pt_meta.json; no module of the package
    calls a model's save() or the two completing steps itself (one place to keep them together)."""
    from pathlib import Path

    from sentence_transformers import SentenceTransformer

    from pyterrier_hybrid.artifact_meta import ARTIFACT_META, save_model

    out = save_model(SentenceTransformer(str(tiny_model_dir), device="cpu"), tmp_path / "m")
    assert "added_tokens_decoder" in json.loads((out / "tokenizer_config.json").read_text())
    assert json.loads((out / "pt_meta.json").read_text()) == ARTIFACT_META
    assert not (save_model(SentenceTransformer(str(tiny_model_dir), device="cpu"), tmp_path / "plain",
                           artifact=False) / "pt_meta.json").exists()
    package = Path(__file__).resolve().parents[1] / "pyterrier_hybrid"
    callers = {p.name for p in package.rglob("*.py")
               if any(s in p.read_text() for s in (".save(str(", "complete_tokenizer_config(", "write_artifact_meta("))}
    assert callers == {"artifact_meta.py", "tokenizer_files.py"}, callers
