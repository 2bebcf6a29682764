"""Graph colouring: colour the vertices with k colours so that no edge joins two equal colours.

A balanced k-colouring is planted first and only edges between differently coloured vertices are
added, so a solution always exists; the verifier accepts any proper colouring.
"""

from __future__ import annotations

import random
import re

NAME = "graph-coloring"
TOPIC = "graph colouring"
DESCRIPTION = "Assign one of k colours to every vertex so that adjacent vertices get different colours."


def generate(seed: int, difficulty: int) -> dict:
    difficulty = max(1, min(5, int(difficulty)))
    rng = random.Random(seed * 1000 + difficulty)
    k = 3 if difficulty <= 3 else 4
    n = 6 + 3 * difficulty
    colours = [i % k + 1 for i in range(n)]
    rng.shuffle(colours)
    candidates = [(a, b) for a in range(n) for b in range(a + 1, n) if colours[a] != colours[b]]
    density = 1.4 + 0.2 * difficulty if k == 3 else 2.4 + 0.3 * difficulty
    m = min(len(candidates), int(n * density))
    edges = sorted(rng.sample(candidates, m))
    shown = [(a + 1, b + 1) if rng.random() < 0.5 else (b + 1, a + 1) for a, b in edges]
    rng.shuffle(shown)
    question = (
        f"A graph has {n} vertices numbered 1 to {n} and the following {m} undirected edges:\n"
        + ", ".join(f"{a}-{b}" for a, b in shown)
        + f"\n\nColour every vertex with one of the colours 1 to {k} so that the two endpoints of every "
        "edge have different colours. Answer format: the colours of vertices 1, 2, ..., "
        f"{n} in that order, as {n} integers separated by single spaces (e.g. for 4 vertices: 1 2 1 3)."
    )
    return {
        "question": question,
        "witness": " ".join(str(c) for c in colours),
        "meta": {"vertices": n, "colours": k, "edges": [[a, b] for a, b in edges]},
    }


def verify(instance: dict, answer: str) -> float:
    try:
        meta = instance["meta"]
        n, k = int(meta["vertices"]), int(meta["colours"])
        if not isinstance(answer, str) or len(answer) > 20 * n + 100:
            return 0.0
        tokens = [t for t in re.split(r"[\s,]+", answer.strip()) if t]
        if len(tokens) != n or not all(re.fullmatch(r"[0-9]{1,3}", t) for t in tokens):
            return 0.0
        col = [int(t) for t in tokens]
        if any(c < 1 or c > k for c in col):
            return 0.0
        return 0.0 if any(col[a] == col[b] for a, b in meta["edges"]) else 1.0
    except Exception:
        return 0.0
