"""Shortest path: find the length of the cheapest route between two nodes of a weighted graph.

The graph is a random spanning tree plus extra edges; the distance is computed with Dijkstra at
generation time, and the target is chosen among the nodes whose cheapest route uses the most edges.
"""

from __future__ import annotations

import heapq
import itertools
import random
import re

NAME = "shortest-path"
TOPIC = "shortest paths in weighted graphs"
DESCRIPTION = "Compute the minimum total weight of a path between two nodes of an undirected weighted graph."

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _dijkstra(n: int, adj: list[list[tuple[int, int]]], src: int) -> tuple[list[int], list[int]]:
    dist = [10**9] * n
    hops = [0] * n
    dist[src] = 0
    heap = [(0, 0, src)]
    while heap:
        d, h, u = heapq.heappop(heap)
        if d > dist[u]:
            continue
        for v, w in adj[u]:
            if d + w < dist[v] or (d + w == dist[v] and h + 1 > hops[v]):
                dist[v], hops[v] = d + w, h + 1
                heapq.heappush(heap, (d + w, h + 1, v))
    return dist, hops


def generate(seed: int, difficulty: int) -> dict:
    difficulty = max(1, min(5, int(difficulty)))
    rng = random.Random(seed * 1000 + difficulty)
    n = 6 + 3 * difficulty
    names = list(_LETTERS[:n])
    weights: dict[tuple[int, int], int] = {}
    perm = list(range(n))
    rng.shuffle(perm)
    for i in range(1, n):
        a, b = perm[i], perm[rng.randrange(max(0, i - 3), i)]
        weights[(min(a, b), max(a, b))] = rng.randint(1, 9 + 3 * difficulty)
    missing = [pair for pair in itertools.combinations(range(n), 2) if pair not in weights]
    for pair in rng.sample(missing, n // 2 + 2 * difficulty):
        weights[pair] = rng.randint(1, 9 + 3 * difficulty)
    adj: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for (a, b), w in sorted(weights.items()):
        adj[a].append((b, w))
        adj[b].append((a, w))
    src = rng.randrange(n)
    dist, hops = _dijkstra(n, adj, src)
    best = max(hops)
    dst = rng.choice([v for v in range(n) if hops[v] == best])
    edges = sorted(weights.items())
    rng.shuffle(edges)
    lines = [f"{names[a]} - {names[b]}: {w}" for (a, b), w in edges]
    question = (
        f"An undirected graph has the nodes {', '.join(names)}. "
        "Each edge is listed as 'X - Y: weight' and can be travelled in both directions:\n"
        + "\n".join(lines)
        + f"\n\nWhat is the minimum total weight of a path from node {names[src]} to node {names[dst]}? "
        "Answer format: a single integer in decimal digits, nothing else."
    )
    return {
        "question": question,
        "witness": str(dist[dst]),
        "meta": {
            "nodes": n,
            "edges": len(edges),
            "source": names[src],
            "target": names[dst],
            "distance": dist[dst],
            "path_edges": best,
        },
    }


def verify(instance: dict, answer: str) -> float:
    try:
        if not isinstance(answer, str) or len(answer) > 40:
            return 0.0
        s = answer.strip()
        if not re.fullmatch(r"[0-9]{1,12}", s):
            return 0.0
        return 1.0 if int(s) == int(instance["meta"]["distance"]) else 0.0
    except Exception:
        return 0.0
