"""A FAISS inner-product index over unit vectors (cosine similarity) with stable integer ids.

Persisted as one file beside the library; `load` returns None when the file is missing or does not
match what the caller expects (its ids), so the caller rebuilds it from the library.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


class VectorIndex:
    def __init__(self, dimensions: int) -> None:
        import faiss

        self.dimensions = dimensions
        # index_factory owns the inner flat index (a Python-built IndexIDMap2 would lose it to the GC)
        self._index = faiss.index_factory(dimensions, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)

    def __len__(self) -> int:
        return self._index.ntotal

    def ids(self) -> set[int]:
        import faiss

        return set(faiss.vector_to_array(self._index.id_map).tolist())

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        import numpy as np

        self._index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
        )

    def nearest(self, vectors: np.ndarray, count: int = 5) -> list[list[tuple[int, float]]]:
        """For each query vector, the `count` most similar stored ids with their cosine similarity."""
        import numpy as np

        if len(self) == 0:
            return [[] for _ in range(len(vectors))]
        scores, ids = self._index.search(
            np.ascontiguousarray(vectors, dtype=np.float32), min(count, len(self))
        )
        return [
            [
                (int(found), float(score))
                for found, score in zip(row_ids, row_scores, strict=True)
                if found != -1
            ]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]

    def save(self, path: Path) -> None:
        import faiss

        temporary = path.with_suffix(".tmp")
        faiss.write_index(self._index, str(temporary))
        temporary.replace(path)  # a crash mid-write never leaves a torn index

    @classmethod
    def load(cls, path: Path, dimensions: int, expected_ids: set[int]) -> VectorIndex | None:
        """The saved index, or None when it is missing, unreadable or stale (other ids)."""
        import faiss

        if not path.is_file():
            return None
        try:
            stored = faiss.read_index(str(path))
        except RuntimeError:
            return None
        index = cls(dimensions)
        index._index = stored  # read_index returns the concrete type, and owns it
        if index._index.d != dimensions or index.ids() != expected_ids:
            return None
        return index
