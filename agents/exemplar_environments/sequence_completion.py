"""Sequence completion: infer the planted rule behind an integer sequence and extend it.

Rules rise with difficulty: arithmetic/geometric, quadratic, interleaved pairs,
second-order linear recurrences, and third-order recurrences or cubics. The question names the
level's family of rules, and enough terms are shown to pin the rule down, so the answer is unique.
"""

import random

NAME = "sequence-completion"
TOPIC = "integer sequence completion"
DESCRIPTION = "Infer the rule that generates an integer sequence and give its next terms."

MAX_ANSWER_CHARS = 500
# difficulty -> (terms shown, terms asked)
SIZES = {1: (6, 1), 2: (6, 2), 3: (8, 2), 4: (8, 3), 5: (10, 3)}
RULES = {
    1: "arithmetic (a constant difference) or geometric (a constant integer ratio)",
    2: "geometric (a constant integer ratio) or a quadratic polynomial in the position",
    3: "two interleaved sequences (odd and even positions), each arithmetic or geometric",
    4: "a recurrence a(n) = p*a(n-1) + q*a(n-2) + c with integer constants p, q, c",
    5: "a recurrence a(n) = p*a(n-1) + q*a(n-2) + r*a(n-3) + c with integer constants p, q, r, c "
    "(a cubic polynomial in the position is one of these)",
}


def _linear(a: int, d: int, n: int) -> list[int]:
    return [a + d * i for i in range(n)]


def _geometric(a: int, r: int, n: int) -> list[int]:
    return [a * r**i for i in range(n)]


def _recurrence(start: list[int], coeffs: list[int], const: int, n: int) -> list[int]:
    seq = list(start)
    while len(seq) < n:
        seq.append(sum(c * seq[-1 - i] for i, c in enumerate(coeffs)) + const)
    return seq[:n]


def _nonzero(rng: random.Random, lo: int, hi: int) -> int:
    return rng.choice([-1, 1]) * rng.randint(lo, hi)


def _sequence(rng: random.Random, difficulty: int, n: int) -> tuple[str, list[int]]:
    """Return (rule kind, first n terms) for the difficulty."""
    if difficulty == 1:
        if rng.random() < 0.7:
            return "arithmetic", _linear(rng.randint(-30, 60), _nonzero(rng, 2, 19), n)
        return "geometric", _geometric(_nonzero(rng, 1, 25), rng.choice([2, 3]), n)
    if difficulty == 2:
        if rng.random() < 0.4:
            return "geometric", _geometric(_nonzero(rng, 1, 15), rng.choice([-3, -2, 2, 3, 4]), n)
        a, b, c = rng.randint(-10, 20), rng.randint(-6, 6), rng.randint(1, 4)
        return "quadratic", [a + b * i + c * i * i for i in range(n)]
    if difficulty == 3:
        first = _linear(rng.randint(-20, 40), _nonzero(rng, 2, 12), n)
        if rng.random() < 0.5:
            second = _geometric(rng.randint(1, 5), rng.choice([2, 3]), n)
        else:
            second = _linear(rng.randint(-20, 40), _nonzero(rng, 2, 12), n)
        return "interleaved", [(first if i % 2 == 0 else second)[i // 2] for i in range(n)]
    if difficulty == 4:
        coeffs = rng.choice([[1, 1], [2, 1], [1, 2], [2, -1], [3, -1], [1, -1]])
        start = [rng.randint(-5, 9), rng.randint(-5, 9)]
        return "order-2 recurrence", _recurrence(start, coeffs, rng.randint(-4, 4), n)
    if rng.random() < 0.5:
        coeffs = rng.choice([[1, 1, 1], [1, 0, 1], [0, 1, 1], [2, 0, -1], [1, 1, -1]])
        start = [rng.randint(-4, 6) for _ in range(3)]
        return "order-3 recurrence", _recurrence(start, coeffs, rng.randint(-3, 3), n)
    a, b, c, d = rng.randint(-10, 10), rng.randint(-5, 5), rng.randint(-3, 3), _nonzero(rng, 1, 2)
    return "cubic", [a + b * i + c * i * i + d * i**3 for i in range(n)]


def generate(seed: int, difficulty: int) -> dict:
    difficulty = max(1, min(5, int(difficulty)))
    rng = random.Random(seed * 1000 + difficulty)
    shown, asked = SIZES[difficulty]
    for _ in range(100):
        kind, seq = _sequence(rng, difficulty, shown + asked)
        visible = ", ".join(str(x) for x in seq[:shown])
        witness = ", ".join(str(x) for x in seq[shown:])
        # at least 3 distinct terms, and the answer is not a run of the shown terms (periodic sequences)
        if len(set(seq[:shown])) >= 3 and f", {witness}, " not in f", {visible}, ":
            break
    word = "term" if asked == 1 else f"{asked} terms"
    question = (
        f"The integer sequence below follows one rule: {RULES[difficulty]}.\n\n{visible}, ...\n\n"
        f"Give the next {word} of the sequence. Answer with exactly {asked} integer(s), comma-separated, "
        "in order (for example: 7, -12, 40)."
    )
    meta = {"kind": kind, "n_shown": shown, "n_asked": asked, "shown": seq[:shown], "next": seq[shown:]}
    return {"question": question, "witness": witness, "meta": meta}


def verify(instance: dict, answer: str) -> float:
    try:
        if not isinstance(answer, str) or len(answer) > MAX_ANSWER_CHARS:
            return 0.0
        expected = [int(x) for x in instance["meta"]["next"]]
        parts = [p.strip() for p in answer.strip().strip("[]().").split(",")]
        if len(parts) != len(expected) or any(len(p) > 40 for p in parts):
            return 0.0
        return 1.0 if [int(p) for p in parts] == expected else 0.0
    except Exception:
        return 0.0
