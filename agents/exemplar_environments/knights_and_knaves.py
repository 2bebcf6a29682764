"""Knights and knaves: knights always tell the truth, knaves always lie; deduce who is who.

A truth assignment is planted, statements consistent with it are added until brute force over all
2^n assignments leaves exactly one consistent, and then redundant statements are pruned away.
Brute force is fine here because level 5 keeps it small: n <= 7 islanders, 128 assignments.
"""

from __future__ import annotations

import random
import re

NAME = "knights-and-knaves"
TOPIC = "knights and knaves logic puzzles"
DESCRIPTION = "Deduce which islanders are truthful knights and which are lying knaves from their statements."

_NAMES = [
    "Alice", "Bruno", "Clara", "Dmitri", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas", "Kira",
    "Lars", "Mona", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera",
]  # fmt: skip
ATTEMPTS = 100  # a planted assignment almost always becomes unique at the first try


def _truth(st: list, a: list[bool]) -> bool:
    kind = st[0]
    if kind == "is":
        return a[st[1]] == st[2]
    if kind == "same":
        return (a[st[1]] == a[st[2]]) == st[3]
    if kind == "both":
        return a[st[1]] == st[3] and a[st[2]] == st[3]
    if kind == "either":
        return a[st[1]] == st[3] or a[st[2]] == st[3]
    return sum(1 for x in a if x == st[2]) == st[1]  # "count"


def _random_statement(rng: random.Random, s: int, n: int, difficulty: int) -> list:
    others = [i for i in range(n) if i != s]
    kinds = (
        ["is", "same", "both", "either", "count"] if difficulty >= 2 else ["is", "same", "either", "count"]
    )
    kind = rng.choice(kinds)
    x, y = rng.sample(others, 2)
    role = rng.random() < 0.5
    if kind == "is":
        return ["is", x, role]
    if kind == "same":
        return ["same", s, x, role]  # role False means "different kinds"
    if kind in ("both", "either"):
        return [kind, x, y, role]
    return ["count", rng.randint(0, n), role]


def _render(st: list, names: list[str], n: int) -> str:
    word = {True: "knight", False: "knave"}
    if st[0] == "is":
        return f"{names[st[1]]} is a {word[st[2]]}."
    if st[0] == "same":
        return f"{names[st[2]]} and I are of {'the same kind' if st[3] else 'different kinds'}."
    if st[0] == "both":
        return f"{names[st[1]]} and {names[st[2]]} are both {word[st[3]]}s."
    if st[0] == "either":
        return f"At least one of {names[st[1]]} and {names[st[2]]} is a {word[st[3]]}."
    verb = f"is a {word[st[2]]}" if st[1] == 1 else f"are {word[st[2]]}s"
    return f"Exactly {st[1]} of the {n} of us {verb}."


def _consistent(stmts: list[tuple[int, list]], n: int) -> int:
    """How many of the 2^n assignments make every speaker truthful exactly when a knight."""
    count = 0
    for mask in range(1 << n):
        a = [bool(mask >> i & 1) for i in range(n)]
        if all(a[s] == _truth(st, a) for s, st in stmts):
            count += 1
    return count


def generate(seed: int, difficulty: int) -> dict:
    difficulty = max(1, min(5, int(difficulty)))
    rng = random.Random(seed * 1000 + difficulty)
    n = difficulty + 2
    names = rng.sample(_NAMES, n)
    for _ in range(ATTEMPTS):
        truth = [rng.random() < 0.5 for _ in range(n)]
        stmts: list[tuple[int, list]] = []
        for _ in range(12 * n):
            s = len(stmts) if len(stmts) < n else rng.randrange(n)
            st = _random_statement(rng, s, n, difficulty)
            if _truth(st, truth) == truth[s]:
                stmts.append((s, st))
                if len(stmts) >= n and _consistent(stmts, n) == 1:
                    break
        if _consistent(stmts, n) == 1:
            break
    else:
        raise RuntimeError(f"no puzzle with a unique solution in {ATTEMPTS} attempts")
    alive = [True] * len(stmts)
    for i in sorted(range(len(stmts)), key=lambda _: rng.random()):
        alive[i] = False
        if _consistent([x for x, keep in zip(stmts, alive, strict=True) if keep], n) != 1:
            alive[i] = True
    kept = [x for x, keep in zip(stmts, alive, strict=True) if keep]
    lines = [f'{names[s]} says: "{_render(st, names, n)}"' for s, st in kept]
    question = (
        "On an island every inhabitant is either a knight, who always tells the truth, or a knave, who "
        f"always lies. You meet {n} islanders: {', '.join(names)}. They say:\n"
        + "\n".join(lines)
        + "\n\nExactly one assignment of knights and knaves is consistent with these statements. "
        "Determine it. Answer format: Name=knight or Name=knave for every islander, separated by "
        "commas (e.g. Zed=knave, Yan=knight)."
    )
    word = {True: "knight", False: "knave"}
    return {
        "question": question,
        "witness": ", ".join(f"{names[i]}={word[truth[i]]}" for i in range(n)),
        "meta": {
            "islanders": n,
            "statements": len(kept),
            "solution": {names[i]: word[truth[i]] for i in range(n)},
        },
    }


def verify(instance: dict, answer: str) -> float:
    try:
        sol = {str(k).lower(): str(v) for k, v in instance["meta"]["solution"].items()}
        if not isinstance(answer, str) or len(answer) > 1000:
            return 0.0
        got: dict[str, str] = {}
        for part in answer.strip().split(","):
            m = re.fullmatch(r"\s*([A-Za-z]+)\s*=\s*(knight|knave)\s*", part, re.IGNORECASE)
            if not m or m.group(1).lower() in got:
                return 0.0
            got[m.group(1).lower()] = m.group(2).lower()
        return 1.0 if got == sol else 0.0
    except Exception:
        return 0.0
