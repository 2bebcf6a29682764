"""Novelty of environments: how close a new environment is to the accepted ones.

An environment is embedded from its name, description and a few sample questions. Accepted
environments' vectors live in the library (one BLOB per row); the FAISS index beside it
(`novelty.faiss`) is only a cache, rebuilt from those vectors when it is missing or stale, so a
`kill -9` between an acceptance and the next index save loses nothing.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from resyn.memory.embeddings import DIMENSIONS, Embedder
from resyn.memory.library import Library
from resyn.memory.vector_index import VectorIndex
from resyn.memory.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np


def novelty_text(name: str | None, description: str | None, questions: list[str]) -> str:
    lines = [f"{name or 'unnamed'}: {description or ''}".strip(), *questions]
    return "\n".join(lines)


@dataclass
class Neighbour:
    environment_id: str
    similarity: float


class NoveltyMemory:
    """The accepted environments' vectors, searchable by cosine similarity. Callers speak in
    environment ids and texts; the index's row ids and the embedding stay inside."""

    def __init__(self, library: Library, embedder: Embedder) -> None:
        self.library = library
        self._embedder = embedder
        self.index_path = Workspace(library.data_dir).novelty_index
        self._index: VectorIndex | None = None

    @property
    def index(self) -> VectorIndex:
        if self._index is None:
            self._index = self._load_or_rebuild()
        return self._index

    def _load_or_rebuild(self) -> VectorIndex:
        import numpy as np

        stored = self.library.accepted_embeddings()
        rows = {rowid for rowid, _, _ in stored}
        index = VectorIndex.load(self.index_path, DIMENSIONS, rows)
        if index is None:
            index = VectorIndex(DIMENSIONS)
            if stored:
                vectors = np.stack([np.frombuffer(blob, dtype=np.float32) for _, _, blob in stored])
                index.add([rowid for rowid, _, _ in stored], vectors)
        return index

    def embed(self, text: str) -> np.ndarray:
        return self._embedder.embed([text])[0]

    def nearest(self, vector: np.ndarray, count: int = 1) -> list[Neighbour]:
        """The `count` accepted environments most similar to `vector`, nearest first (none while
        none is accepted)."""
        [found] = self.index.nearest(vector.reshape(1, -1), count)
        return [Neighbour(self.library.id_of_row(rowid), round(similarity, 4)) for rowid, similarity in found]

    def catch_up(self) -> None:
        """Add the vectors other workers accepted since the index was built (one query when there
        are none), so the final novelty check sees every accepted environment."""
        import numpy as np

        if self._index is None:
            return  # built from every stored vector on first use
        missing = self.library.accepted_rows() - self._index.ids()
        if missing:
            stored = [(row, blob) for row, _, blob in self.library.accepted_embeddings() if row in missing]
            vectors = np.stack([np.frombuffer(blob, dtype=np.float32) for _, blob in stored])
            self._index.add([row for row, _ in stored], vectors)

    def remember(self, environment_id: str, vector: np.ndarray) -> None:
        """Add a just-accepted environment (its vector is already stored in its library row)."""
        self.index.add([self.library.row_of(environment_id)], vector.reshape(1, -1))

    def similarity_to_accepted(self, vectors: np.ndarray) -> np.ndarray:
        """Per row, the cosine to the nearest accepted environment (0 when none is accepted)."""
        import numpy as np

        nearest = self.index.nearest(vectors, 1)
        return np.array([found[0][1] if found else 0.0 for found in nearest], dtype=np.float32)

    def save(self) -> None:
        """Write the cache. One that cannot be written (a read-only folder, a full disk) is rebuilt
        next time, so that is no error, and it must not hide the error that stopped the run."""
        if self._index is not None:
            with contextlib.suppress(OSError, RuntimeError):  # faiss raises RuntimeError
                self._index.save(self.index_path)
