"""Benchmark: the diversity memory's embeddings and vector lookups on this machine's CPU.

    python -m resyn.evals.bench_memory [--entries N] [--queries N]

1. embedding: MiniLM after its load (timed apart), on short topic- and question-like texts
   (8–20 words, what the memory embeds) and on long ones (~200 words, cut at 256 word pieces);
2. lookups: single-query `VectorIndex.nearest(v, 5)` over random unit vectors, a forced flat
   (exact) scan against the default index (HNSW past its exact limit), with the recall@1 of the
   default against the exact answer. Random vectors are the hardest case for a graph index: no
   clusters to follow, and every neighbour almost as far as the nearest. Real embeddings do better.

Goals: ≥ 1,000 short texts/s; a lookup among 100,000 entries under 1 ms (median and p99).
"""

from __future__ import annotations

import argparse
import os
import random
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from resyn.memory.embeddings import DIMENSIONS, Embedder
from resyn.memory.vector_index import GRAPH_NEIGHBOURS, VectorIndex

SHORT_TEXTS, LONG_TEXTS = 4_000, 200
SUBJECTS = [
    "graph coloring", "shortest paths in weighted graphs", "knights and knaves", "Caesar ciphers",
    "topological sorting", "bin packing", "sudoku variants", "interval scheduling", "binary arithmetic",
    "family tree relations", "calendar date arithmetic", "balanced parentheses", "river crossing puzzles",
    "matrix determinants", "prime factorization", "tower of Hanoi", "seating arrangements", "word ladders",
]  # fmt: skip
TEMPLATES = [
    "generate {subject} puzzles with {n} items and one checked answer",
    "puzzles about {subject} where every answer is checked by code",
    "How many steps does {subject} take with {n} pieces?",
    "Solve this {subject} problem of size {n} and give the smallest valid answer.",
    "Given {n} constraints on {subject}, which arrangement satisfies all of them at once?",
    "Find the number of distinct solutions to a {subject} instance with {n} elements, modulo 1000.",
]
NEAR_DUPLICATE_COSINE = 0.9


def short_texts(count: int, rng: random.Random) -> list[str]:
    return [
        rng.choice(TEMPLATES).format(subject=rng.choice(SUBJECTS), n=rng.randint(3, 99)) for _ in range(count)
    ]


def long_texts(count: int, rng: random.Random) -> list[str]:
    return [" ".join(short_texts(15, rng)) for _ in range(count)]


def mean_words(texts: list[str]) -> int:
    return round(sum(len(text.split()) for text in texts) / len(texts))


def texts_per_second(embedder: Embedder, texts: list[str]) -> float:
    started = time.perf_counter()
    embedder.embed(texts)
    return len(texts) / (time.perf_counter() - started)


def unit_vectors(count: int, rng: np.random.Generator) -> np.ndarray:
    vectors = rng.standard_normal((count, DIMENSIONS), dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def near_duplicates(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each vector plus noise, at `NEAR_DUPLICATE_COSINE` to it (what a duplicate check asks about)."""
    spread = np.sqrt(1 / NEAR_DUPLICATE_COSINE**2 - 1) / np.sqrt(DIMENSIONS)
    noisy = vectors + spread * rng.standard_normal(vectors.shape, dtype=np.float32)
    return noisy / np.linalg.norm(noisy, axis=1, keepdims=True)


def filled(index: VectorIndex, vectors: np.ndarray) -> float:
    started = time.perf_counter()
    index.add(list(range(len(vectors))), vectors)
    return time.perf_counter() - started


def latencies_ms(index: VectorIndex, queries: np.ndarray) -> tuple[float, float]:
    """Median and p99 milliseconds of one `nearest(v, 5)` call."""
    timings = []
    for query in queries:
        started = time.perf_counter()
        index.nearest(query[None], 5)
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.median(timings)), float(np.percentile(timings, 99))


def recall_at_1(index: VectorIndex, exact: VectorIndex, queries: np.ndarray) -> float:
    found = [hits[0][0] for hits in index.nearest(queries, 1)]
    truth = [hits[0][0] for hits in exact.nearest(queries, 1)]
    return float(np.mean(np.array(found) == np.array(truth)))


def run(entries: int, queries: int) -> None:
    table = Table(
        title=f"diversity memory on {os.cpu_count()} CPU cores ({queries:,} lookups, one at a time)"
    )
    for column in ("measure", "goal", "measured", "met?"):
        table.add_column(column, justify="left" if column == "measure" else "right")

    def row(measure: str, measured: str, goal: str = "", met: bool | None = None) -> None:
        table.add_row(measure, goal, measured, {True: "[green]yes", False: "[red]no", None: ""}[met])

    embedder, text_rng = Embedder(), random.Random(0)
    started = time.perf_counter()
    embedder.embed(["warm-up"])  # loads the model
    row("load the embedding model (once)", f"{time.perf_counter() - started:.1f} s")
    short, long = short_texts(SHORT_TEXTS, text_rng), long_texts(LONG_TEXTS, text_rng)
    speed = texts_per_second(embedder, short)
    row(f"embed {len(short):,} texts of ~{mean_words(short)} words", f"{speed:,.0f} texts/s", "≥ 1,000/s",
        speed >= 1_000)  # fmt: skip
    speed = texts_per_second(embedder, long)
    row(f"embed {len(long):,} texts of ~{mean_words(long)} words", f"{speed:,.0f} texts/s")

    vector_rng = np.random.default_rng(0)
    stored = unit_vectors(entries, vector_rng)
    probes = unit_vectors(queries, vector_rng)
    duplicates = near_duplicates(stored[vector_rng.integers(0, entries, queries)], vector_rng)
    exact, default = VectorIndex(DIMENSIONS, exact_limit=entries), VectorIndex(DIMENSIONS)
    row(f"add {entries:,} vectors: exact (flat)", f"{filled(exact, stored):.2f} s")
    seconds = filled(default, stored)
    label = "default (flat)" if default.exact else f"default (HNSW{GRAPH_NEIGHBOURS})"
    row(f"add {entries:,} vectors: {label}", f"{seconds:.2f} s")
    for name, index in (("exact (flat)", exact), (label, default)):
        median, p99 = latencies_ms(index, probes)
        row(f"nearest(v, 5) median: {name}", f"{median:.2f} ms", "< 1 ms", median < 1)
        row(f"nearest(v, 5) p99: {name}", f"{p99:.2f} ms", "< 1 ms", p99 < 1)
    near = recall_at_1(default, exact, duplicates)
    row(f"recall@1, near duplicates (cos {NEAR_DUPLICATE_COSINE})", f"{near:.3f}", "≥ 0.95", near >= 0.95)
    row("recall@1, random queries (worst case)", f"{recall_at_1(default, exact, probes):.3f}")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000, help="vectors in the index")
    parser.add_argument("--queries", type=int, default=1_000, help="single-vector lookups timed")
    arguments = parser.parse_args()
    run(arguments.entries, arguments.queries)


if __name__ == "__main__":
    main()
