"""A FAISS inner-product index over unit vectors (cosine similarity) with stable integer ids.

Exact while small, fast when big: a flat scan up to `exact_limit` vectors (10,000 × 384 floats take
~0.7 ms a query on one core), then an HNSW graph (approximate; at 100,000 vectors ~0.5 ms a query
where the flat scan takes ~14 ms; `python -m resyn.evals.bench_memory` measures both and the recall).
Persisted as one file beside the library; `load` returns None when the file is missing or does not
match what the caller expects (its ids), so the caller rebuilds it from the library.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import faiss
    import numpy as np

EXACT_LIMIT = 10_000
GRAPH_NEIGHBOURS = 32  # HNSW's M: links per vector; 16 loses too much recall at 384 dimensions
EF_CONSTRUCTION = 128  # candidates kept while linking a new vector: a better graph, slower adds
EF_SEARCH = 48  # candidates kept while searching: the recall/latency dial
# Fewer queries than this search on the calling thread alone. Waking OpenMP's other threads costs more
# than a lookup, and milliseconds while the cores are busy: a 0.4 ms lookup took 5-20 ms on two busy cores.
PARALLEL_QUERIES = 20


class VectorIndex:
    def __init__(self, dimensions: int, exact_limit: int = EXACT_LIMIT) -> None:
        self.dimensions = dimensions
        self.exact_limit = exact_limit
        self._index = _new_index(dimensions, "Flat")

    def __len__(self) -> int:
        return self._index.ntotal

    @property
    def exact(self) -> bool:
        """Whether searches scan every vector (flat) rather than walk the HNSW graph."""
        import faiss

        return isinstance(faiss.downcast_index(self._index.index), faiss.IndexFlat)

    def ids(self) -> set[int]:
        import faiss

        return set(faiss.vector_to_array(self._index.id_map).tolist())

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        import numpy as np

        if self.exact and len(self) + len(ids) > self.exact_limit:
            self._switch_to_graph()
        self._index.add_with_ids(
            np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
        )

    def nearest(self, vectors: np.ndarray, count: int = 5) -> list[list[tuple[int, float]]]:
        """For each query vector, the `count` most similar stored ids with their cosine similarity."""
        import faiss
        import numpy as np

        if len(self) == 0:
            return [[] for _ in range(len(vectors))]
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(threads if len(vectors) >= PARALLEL_QUERIES else 1)
        try:
            scores, ids = self._index.search(
                np.ascontiguousarray(vectors, dtype=np.float32), min(count, len(self))
            )
        finally:
            faiss.omp_set_num_threads(threads)
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
        try:
            faiss.write_index(self._index, str(temporary))
            temporary.replace(path)  # a crash mid-write never leaves a torn index
        except BaseException:
            temporary.unlink(missing_ok=True)  # a write cut short (a full disk) leaves no torn file
            raise

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
        if index.exact and len(index) > index.exact_limit:  # saved before it grew past the limit
            index._switch_to_graph()
        elif not index.exact:
            faiss.downcast_index(stored.index).hnsw.efSearch = EF_SEARCH  # it was saved with the old one
        return index

    def _switch_to_graph(self) -> None:
        import faiss

        ids = faiss.vector_to_array(self._index.id_map)
        vectors = self._index.index.reconstruct_n(0, len(self))
        self._index = _new_index(self.dimensions, f"HNSW{GRAPH_NEIGHBOURS}")
        self._index.add_with_ids(vectors, ids)


def _new_index(dimensions: int, kind: str) -> faiss.IndexIDMap2:
    import faiss

    # index_factory owns the inner index (a Python-built IndexIDMap2 would lose it to the GC)
    index = faiss.index_factory(dimensions, f"IDMap2,{kind}", faiss.METRIC_INNER_PRODUCT)
    if kind.startswith("HNSW"):
        graph = faiss.downcast_index(index.index).hnsw
        graph.efConstruction, graph.efSearch = EF_CONSTRUCTION, EF_SEARCH
    return index
