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
