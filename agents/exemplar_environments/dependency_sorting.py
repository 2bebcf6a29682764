"""Dependency sorting: order tasks so every task comes after all of its prerequisites.

A hidden order is planted, prerequisites only ever point backwards in it, and the verifier
accepts any topological order of the resulting graph, not just the planted one.
"""

from __future__ import annotations

import random

NAME = "dependency-sorting"
TOPIC = "dependency sorting"
DESCRIPTION = "Order tasks so that every task comes after all of its prerequisites."

_POOL = [
    "audit", "backup", "build", "cache", "compile", "configure", "deploy", "document", "encrypt",
    "fetch", "format", "index", "install", "lint", "load", "merge", "migrate", "monitor", "notify",
    "optimize", "package", "parse", "patch", "profile", "publish", "release", "render", "review",
    "scan", "schedule", "seed", "sign", "stage", "sync", "test", "translate", "tune", "upload",
    "validate", "verify",
]  # fmt: skip


def generate(seed: int, difficulty: int) -> dict:
    difficulty = max(1, min(5, int(difficulty)))
    rng = random.Random(seed * 1000 + difficulty)
    n = 5 + 3 * difficulty
    order = rng.sample(_POOL, n)
    p = 0.25 + 0.05 * difficulty
    prereqs: dict[str, list[str]] = {t: [] for t in order}
    for j in range(1, n):
        # Each task depends on some earlier tasks; ensure a chain-ish structure so the order is deep.
        cands = [order[i] for i in range(j) if rng.random() < p / (1 + 0.15 * (j - i - 1))]
        if not cands and rng.random() < 0.8:
            cands = [order[rng.randrange(max(0, j - 3), j)]]
        prereqs[order[j]] = sorted(cands)
    prereqs = {t: prereqs[t] for t in sorted(prereqs)}
    lines = []
    for t, deps in prereqs.items():
        lines.append(f"- {t}: requires {', '.join(deps)}" if deps else f"- {t}: no prerequisites")
    question = (
        f"A project consists of {n} tasks. Each task may only be done after all of its prerequisites "
        "have been done. The tasks (listed alphabetically) and their prerequisites are:\n"
        + "\n".join(lines)
        + "\n\nGive an order in which all tasks can be performed. Answer format: every task name "
        "exactly once, in execution order, separated by commas (for example: taskx, tasky, taskz)."
    )
    return {
        "question": question,
        "witness": ", ".join(order),
        "meta": {"n_tasks": n, "prerequisites": prereqs, "edges": sum(len(v) for v in prereqs.values())},
    }


def verify(instance: dict, answer: str) -> float:
    try:
        prereqs = instance["meta"]["prerequisites"]
        if not isinstance(answer, str) or len(answer) > 4000:
            return 0.0
        names = [x.strip().lower() for x in answer.strip().split(",")]
        if len(names) != len(prereqs) or sorted(names) != sorted(prereqs):
            return 0.0
        pos = {t: i for i, t in enumerate(names)}
        for task, deps in prereqs.items():
            if any(pos[d] >= pos[task] for d in deps):
                return 0.0
        return 1.0
    except Exception:
        return 0.0
