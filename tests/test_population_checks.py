"""The checks that judge a sample as a whole, on samples shaped like real suites' cases: closed
answer sets that are no leak, small but sufficient instance spaces, a premise-copy shortcut,
generators that ignore difficulty, and samples with nothing to look at."""

from __future__ import annotations

import random
from typing import Any

from resyn.tools import checks, population_checks
from resyn.tools.shortcuts import shortcut_answers

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def instance(seed: int, difficulty: int, question: str, witness: str, **meta: Any) -> dict[str, Any]:
    """A generate call as the harness reports it."""
    return {
        "seed": seed,
        "difficulty": difficulty,
        "status": "ok",
        "instance": {"question": question, "witness": witness, "meta": meta},
    }


def weekday_arithmetic(seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    today, days = rng.randrange(7), rng.randint(1, 60)
    question = f"Today is {WEEKDAYS[today]}. What day of the week is it {days} days from now?"
    return instance(seed, 1, question, WEEKDAYS[(today + days) % 7], days=days)


def test_a_weekday_answer_in_a_question_that_names_a_weekday_is_no_leak() -> None:
    passed, detail = population_checks.no_leak([weekday_arithmetic(seed) for seed in range(64)])
    assert passed is True
    assert "closed set of answers" in detail


def test_a_fixed_answer_the_question_offers_is_no_leak() -> None:
    """shortest_path: 'write "infeasible" when there is no path', and sometimes that is the answer."""
    calls = []
    for seed in range(64):
        rng = random.Random(seed)
        path = " -> ".join(rng.sample("ABCDEFGH", 4))
        witness = "infeasible" if seed % 3 == 0 else path
        question = (
            f'Find the shortest path from A to H in graph #{seed}. Write "infeasible" if there is none.'
        )
        calls.append(instance(seed, 1, question, witness))
    assert population_checks.no_leak(calls)[0] is True


def test_one_of_the_listed_names_is_no_leak() -> None:
    """zebra puzzles: the answer is one of the people the puzzle lists."""
    names = ["Arnold", "Bernard", "Carole", "Daniela", "Eleanor"]
    calls = []
    for seed in range(64):
        rng = random.Random(seed)
        order = rng.sample(names, 5)
        question = f"Five people live in a row: {', '.join(order)}. Clue {seed}. Who lives in the middle?"
        calls.append(instance(seed, 1, question, order[2]))
    assert population_checks.no_leak(calls)[0] is True


def test_a_question_that_states_its_own_answer_still_leaks() -> None:
    calls = []
    for seed in range(64):
        numbers = random.Random(seed).sample(range(100_000, 999_999), 3)
        question = f"Add {numbers}. (Hint: the total is {sum(numbers)}.)"
        calls.append(instance(seed, 1, question, str(sum(numbers))))
    passed, detail = population_checks.no_leak(calls)
    assert passed is False
    assert "appears verbatim in the question" in detail and "64 of 64" in detail


def draws(space: int, count: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [instance(index, 1, f"question {rng.randrange(space)}", "1") for index in range(count)]


def test_a_small_but_sufficient_space_is_diverse() -> None:
    """chain_sum at difficulty 1 has about 200 questions: 64 draws repeat a few, and that is fine."""
    passed, detail = population_checks.diverse(draws(space=200, count=64))
    assert passed is True
    assert "distinct questions" in detail and "64 draws" in detail


def test_a_repeat_among_few_draws_does_not_fail_a_large_space() -> None:
    calls = [instance(seed, 1, f"question {seed % 7}", "1") for seed in range(8)]
    assert population_checks.diverse(calls)[0] is True


def test_a_collapsed_space_is_not_diverse_and_says_its_estimate() -> None:
    passed, detail = population_checks.diverse(draws(space=20, count=64))
    assert passed is False
    assert "about 2" in detail and "training needs at least 100" in detail


def sized(difficulty: int, seed: int, size: int) -> dict[str, Any]:
    rng = random.Random(seed * 10 + difficulty)
    numbers = [rng.randint(-99, 99) for _ in range(size)]
    return instance(seed, difficulty, f"Add {numbers}.", str(sum(numbers)), numbers=numbers)


def test_sizes_that_grow_with_difficulty_are_graded() -> None:
    calls = [sized(level, seed, 2 * level) for level in (1, 5) for seed in range(16)]
    passed, detail = population_checks.graded(calls)
    assert passed is True
    assert "len(meta['numbers'])" in detail


def test_a_generator_that_ignores_difficulty_is_not_graded() -> None:
    calls = [sized(level, seed, 6) for level in (1, 5) for seed in range(64)]
    passed, detail = population_checks.graded(calls)
    assert passed is False
    assert "beyond noise" in detail


def test_meta_that_echoes_the_level_is_no_size() -> None:
    calls = [sized(level, seed, 6) for level in (1, 5) for seed in range(64)]
    for call in calls:
        call["instance"]["meta"]["difficulty"] = call["difficulty"]
    assert population_checks.graded(calls)[0] is False


def test_copying_the_first_premise_is_a_shortcut() -> None:
    """propositional_logic: a premise is entailed by the premises, so copying one scores 1.0."""
    question = "Premises:\n1. (P ∨ Q)\n2. ¬Q\nWhat can you conclude?"
    rules = shortcut_answers(question)
    assert rules["line 2 of the question without its label"] == "(P ∨ Q)"
    assert "(P ∧ ¬P)" in rules.values()
    scores = {
        f"{seed}:1": {rule: 1.0 if answer == "(P ∨ Q)" else 0.0 for rule, answer in rules.items()}
        for seed in range(40)
    }
    passed, detail = population_checks.no_shortcut(scores, shared_rate=0.05)
    assert passed is False
    assert "line 2 of the question without its label" in detail and "40 of 40" in detail


def test_a_trick_no_better_than_guessing_a_yes_no_answer_is_no_shortcut() -> None:
    scores = {f"{seed}:1": {"the first quoted text in the question": float(seed % 2)} for seed in range(40)}
    passed, detail = population_checks.no_shortcut(scores, shared_rate=0.5)
    assert passed is True
    assert "share their answer in 50% of pairs" in detail


def test_yes_no_questions_share_their_answer_half_the_time() -> None:
    calls = [instance(seed, 1, f"Is {seed} even?", "yes" if seed % 2 == 0 else "no") for seed in range(40)]
    assert 0.45 < population_checks.shared_answer_rate(calls) < 0.5


def test_numbers_options_and_quotes_are_tried() -> None:
    rules = shortcut_answers('Pick one of: red, green, blue.\nWrite "none" if 3 and 12 are equal.')
    assert {"red", "blue", "none", "3", "12"} <= set(rules.values())


def test_checks_with_nothing_to_look_at_are_skipped() -> None:
    """No well-formed instance: nothing passes vacuously."""
    for result in (
        population_checks.diverse([]),
        population_checks.no_leak([]),
        population_checks.graded([]),
        population_checks.no_shortcut({}, 0.0),
        checks.witness_accepted([], {}),
        checks.rejects_wrong([], []),
        checks.robust([]),
        checks.deterministic([], []),
    ):
        passed, reason = result
        assert passed is None and reason
