"""Job scheduling: split jobs between two identical machines to minimise the makespan.

The optimal makespan is computed at generation time by an exact subset-sum DP (durations are
small integers), and the verifier accepts any split of all jobs whose busier machine meets it.
"""

from __future__ import annotations

import random
import re

NAME = "job-scheduling"
TOPIC = "job scheduling"
DESCRIPTION = "Assign jobs to two identical machines so that the time until all jobs finish is minimal."

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _best_split(durations: list[int]) -> tuple[int, list[int]]:
    """Exact DP over subset sums; returns the optimal makespan and the jobs of one machine."""
    total = sum(durations)
    parent: dict[int, tuple[int, int]] = {0: (-1, -1)}  # sum -> (previous sum, job added)
    for j, d in enumerate(durations):
        for s in sorted(parent, reverse=True):
            if s + d not in parent:
                parent[s + d] = (s, j)
    best = min(parent, key=lambda s: (max(s, total - s), s))
    jobs, s = [], best
    while s != 0:
        s, j = parent[s]
        jobs.append(j)
    return max(best, total - best), sorted(jobs)


def generate(seed: int, difficulty: int) -> dict:
    difficulty = max(1, min(5, int(difficulty)))
    rng = random.Random(seed * 1000 + difficulty)
    n = 6 + 2 * difficulty
    durations = [rng.randint(2, 10 + 8 * difficulty) for _ in range(n)]
    names = list(_LETTERS[:n])
    makespan, first = _best_split(durations)
    second = [j for j in range(n) if j not in first]
    lines = [f"- job {names[j]}: {durations[j]} minutes" for j in range(n)]
    question = (
        f"{n} jobs must each be run, without interruption, on one of two identical machines. "
        "A machine runs its jobs one after another, and both machines start at time 0. The jobs are:\n"
        + "\n".join(lines)
        + "\n\nAssign every job to a machine so that the time at which the last job finishes (the "
        "makespan) is as small as possible. Answer format: the letters of the jobs on machine 1 "
        "separated by spaces, then a vertical bar '|', then the letters of the jobs on machine 2 "
        "separated by spaces; every job exactly once (e.g. for five jobs: A D | B C E)."
    )
    witness = " ".join(names[j] for j in first) + " | " + " ".join(names[j] for j in second)
    return {
        "question": question,
        "witness": witness,
        "meta": {"n_jobs": n, "jobs": names, "durations": durations, "optimal_makespan": makespan},
    }


def verify(instance: dict, answer: str) -> float:
    try:
        meta = instance["meta"]
        names = [str(x) for x in meta["jobs"]]
        dur = dict(zip(names, (int(d) for d in meta["durations"]), strict=True))
        if not isinstance(answer, str) or len(answer) > 500 or answer.count("|") != 1:
            return 0.0
        loads, seen = [], []
        for part in answer.split("|"):
            tokens = [t.upper() for t in re.split(r"[\s,]+", part.strip()) if t]
            if any(t not in dur for t in tokens):
                return 0.0
            seen.extend(tokens)
            loads.append(sum(dur[t] for t in tokens))
        if sorted(seen) != sorted(names):
            return 0.0
        return 1.0 if max(loads) <= int(meta["optimal_makespan"]) else 0.0
    except Exception:
        return 0.0
