"""The vector cache: entries keyed by model, collection, kind and text mode; exact ids; damage detected."""

from __future__ import annotations

import numpy as np
import pytest

from pyterrier_hybrid.cache import CacheEntryWarning, VectorCache, checksum

IDS = ["en_0_0", "en_0_1", "en_1_0"]


def _vectors() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)


def test_key_separates_every_part():
    parts = dict(fingerprint="abc", collection="xquad-r/en", kind="doc", text_mode="text")
    keys = {VectorCache.key(**parts)} | {VectorCache.key(**{**parts, k: v}) for k, v in
                                          (("fingerprint", "abd"), ("collection", "xquad-r/de"), ("kind", "query"),
                                           ("text_mode", "text+context"))}
    assert len(keys) == 5 and VectorCache.key(**parts).startswith("xquad-r_en.doc.")


def test_put_get_and_get_or_encode(tmp_path):
    cache, vecs = VectorCache(tmp_path), _vectors()
    key = VectorCache.key(fingerprint="f", collection="c", kind="doc", text_mode="text")
    assert cache.get(key, IDS) is None
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return vecs

    np.testing.assert_array_equal(cache.get_or_encode(key, IDS, ["a", "b", "c"], encode, {"model": "m"}), vecs)
    np.testing.assert_array_equal(cache.get_or_encode(key, IDS, ["a", "b", "c"], encode, {"model": "m"}), vecs)
    assert calls == [["a", "b", "c"]]  # encoded once, then read back
    assert cache.get(key, IDS[::-1]) is None and cache.get(key, IDS[:2]) is None  # other ids: a miss


def test_damaged_entry_is_a_miss_with_a_warning(tmp_path):
    cache, vecs = VectorCache(tmp_path), _vectors()
    cache.put("k", IDS, vecs, {})
    path = cache.path("k") / "vecs.f4"
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    from pyterrier_hybrid import cache as cache_module

    cache_module._VERIFIED.clear()
    with pytest.warns(CacheEntryWarning, match="damaged"):
        assert VectorCache(tmp_path).get("k", IDS) is None
    assert checksum(np.asarray(IDS), vecs) != checksum(np.asarray(IDS), vecs + 1)
