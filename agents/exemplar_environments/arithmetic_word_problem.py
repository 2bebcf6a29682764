"""Arithmetic word problems built from a planted computation tree.

Each person's count is defined from earlier counts by one operation (more, fewer, times,
a fraction, sums and differences). Higher difficulty adds people (deeper trees), shuffles
the statements so the dependencies must be untangled, and asks for totals or differences.
"""

import random
import re

NAME = "arithmetic-word-problem"
TOPIC = "multi-step arithmetic word problems"
DESCRIPTION = "Solve a multi-step word problem whose quantities depend on one another; answer an integer."

MAX_ANSWER_CHARS = 60
_NAMES_TEXT = (
    "Ana Ben Cara Dev Eli Fay Gus Hana Ivo Jude Kai Lena Milo Nora Omar Pia Quinn Rosa Sami Tess Uma "
    "Vik Wren Yara Zed"
)
NAMES = sorted(_NAMES_TEXT.split())
ITEMS = ["marbles", "stickers", "coins", "stamps", "shells", "cards", "pencils", "beads", "apples", "books"]
TIMES = {2: "twice", 3: "three times", 4: "four times"}
FRACTIONS = {2: "half", 3: "a third", 4: "a quarter", 5: "a fifth"}
OPERATIONS = ["more", "fewer", "times", "fraction", "sum", "difference"]


def _step(rng: random.Random, who: str, item: str, values: dict[str, int]) -> tuple[str, int, list]:
    """Define `who` from earlier people with one random operation that fits their counts."""
    known = list(values)  # definition order; leaning on the newest person makes the tree deeper
    q = known[-1] if rng.random() < 0.6 else rng.choice(known)
    r = rng.choice([p for p in known if p != q]) if len(known) > 1 else q
    vq, vr = values[q], values[r]
    for op in rng.sample(OPERATIONS, len(OPERATIONS)):  # "more" always fits, so some op returns
        if op == "more":
            k = rng.randint(2, 25)
            return f"{who} has {k} more {item} than {q}.", vq + k, [q]
        if op == "fewer" and vq > 3:
            k = rng.randint(1, min(25, vq - 1))
            return f"{who} has {k} fewer {item} than {q}.", vq - k, [q]
        if op == "times":
            k = rng.choice(sorted(TIMES))
            if vq * k <= 600:
                return f"{who} has {TIMES[k]} as many {item} as {q}.", vq * k, [q]
        if op == "fraction":
            options = [k for k in sorted(FRACTIONS) if vq % k == 0]
            if options:
                k = rng.choice(options)
                return f"{who} has {FRACTIONS[k]} as many {item} as {q}.", vq // k, [q]
        if op == "sum" and q != r:
            return f"{who} has as many {item} as {q} and {r} have together.", vq + vr, [q, r]
        if op == "difference" and q != r and vq != vr:
            big, small = (q, r) if vq > vr else (r, q)
            return f"{who} has as many {item} as {big} has more than {small}.", abs(vq - vr), [q, r]
    raise AssertionError("unreachable: the 'more' operation always fits")


def _draw(rng: random.Random, difficulty: int) -> tuple[str, int, dict]:
    """One word problem: its question, its answer and its meta."""
    people = rng.sample(NAMES, difficulty + 2)
    item = rng.choice(ITEMS)
    values = {people[0]: rng.randint(6, 60)}
    depth = {people[0]: 0}
    statements = [f"{people[0]} has {values[people[0]]} {item}."]
    for who in people[1:]:
        statement, values[who], used = _step(rng, who, item, values)
        statements.append(statement)
        depth[who] = 1 + max(depth[p] for p in used)
    if difficulty >= 3:
        rng.shuffle(statements)
    target = rng.choice(["last", "total", "gap"]) if difficulty >= 3 else "last"
    last = max(people, key=lambda p: (depth[p], people.index(p)))
    if target == "total":
        ask, answer = (
            f"How many {item} do {', '.join(people[:-1])} and {last} have altogether?",
            sum(values.values()),
        )
    elif target == "gap":
        other = rng.choice([p for p in people if values[p] != values[last]])
        a, b = sorted([last, other], key=lambda p: -values[p])
        ask, answer = f"How many more {item} does {a} have than {b}?", values[a] - values[b]
    else:
        ask, answer = f"How many {item} does {last} have?", values[last]
    question = (
        " ".join(statements)
        + f"\n\n{ask}\nAnswer with a single integer in decimal digits (for example: 17), without units."
    )
    meta = {
        "n_people": len(people),
        "max_depth": max(depth.values()),
        "people": people,
        "values": values,
        "depth": depth,
        "target": target,
        "answer": answer,
        "item": item,
    }
    return question, answer, meta


def generate(seed: int, difficulty: int) -> dict:
    difficulty = max(1, min(5, int(difficulty)))
    rng = random.Random(seed * 1000 + difficulty)
    for _ in range(100):
        question, answer, meta = _draw(rng, difficulty)
        # a step that undoes another ("B has 11 more than A; C has as many as B has more than A")
        # makes the answer one of the printed numbers, to be guessed rather than computed
        if str(answer) not in re.findall(r"\d+", question):
            break
    return {"question": question, "witness": str(answer), "meta": meta}


def verify(instance: dict, answer: str) -> float:
    try:
        if not isinstance(answer, str) or len(answer) > MAX_ANSWER_CHARS:
            return 0.0
        text = answer.strip().replace(",", "")
        if not text.lstrip("-").isdigit():
            return 0.0
        return 1.0 if int(text) == int(instance["meta"]["answer"]) else 0.0
    except Exception:
        return 0.0
