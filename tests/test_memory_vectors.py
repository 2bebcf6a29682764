"""The diversity memory's building blocks: offline embeddings and the persisted FAISS index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from resyn.memory.embeddings import DIMENSIONS, Embedder
from resyn.memory.vector_index import VectorIndex


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


def test_paraphrases_are_closer_than_different_topics(embedder: Embedder) -> None:
    vectors = embedder.embed(
        ["order tasks so each comes after its prerequisites", "topological sorting of dependent jobs",
         "decrypt a Caesar cipher with a known shift"]
    )  # fmt: skip
    assert vectors.shape == (3, DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_the_index_finds_the_nearest_and_survives_a_round_trip(embedder: Embedder, tmp_path: Path) -> None:
    topics = ["graph coloring", "shortest paths in weighted graphs", "knights and knaves logic puzzles"]
    index = VectorIndex(DIMENSIONS)
    index.add([10, 20, 30], embedder.embed(topics))
    query = embedder.embed(["liars and truth-tellers puzzles"])
    assert index.nearest(query, 1)[0][0][0] == 30

    path = tmp_path / "topics.faiss"
    index.save(path)
    again = VectorIndex.load(path, DIMENSIONS, {10, 20, 30})
    assert again is not None and again.nearest(query, 3) == index.nearest(query, 3)
    assert VectorIndex.load(path, DIMENSIONS, {10, 20}) is None  # stale: rebuild from the library
    assert VectorIndex.load(tmp_path / "missing.faiss", DIMENSIONS, set()) is None


def test_an_empty_index_has_no_neighbours() -> None:
    assert VectorIndex(DIMENSIONS).nearest(np.zeros((2, DIMENSIONS), dtype=np.float32)) == [[], []]


def test_bf16_vectors_agree_with_fp32(embedder: Embedder) -> None:
    texts = ["interval scheduling with deadlines", "What is the sum of 3, -7 and 12? Answer: an integer."]
    full = Embedder(bf16=False)
    full.model = embedder.model  # the same weights, another precision
    fast = Embedder(bf16=True)
    fast.model = embedder.model
    cosines = np.sum(full.embed(texts) * fast.embed(texts), axis=1)
    assert cosines.min() > 0.999


def test_a_big_index_switches_to_hnsw_and_keeps_its_ids(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(DIMENSIONS, exact_limit=100)
    index.add(list(range(1000, 1100)), vectors[:100])
    assert index.exact
    index.add(list(range(1100, 1300)), vectors[100:])
    assert not index.exact and index.ids() == set(range(1000, 1300))
    near_copies = vectors[::10] + 0.05 * rng.standard_normal((30, DIMENSIONS)).astype(np.float32)
    found = [hits[0][0] for hits in index.nearest(near_copies, 1)]
    assert found == list(range(1000, 1300, 10))
    index.save(tmp_path / "big.faiss")
    again = VectorIndex.load(tmp_path / "big.faiss", DIMENSIONS, set(range(1000, 1300)))
    assert again is not None and not again.exact
    assert again.nearest(near_copies, 1) == index.nearest(near_copies, 1)
