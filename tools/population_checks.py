"""The checks that judge the sample as a whole: diverse, no_leak, graded and no_shortcut.

Each one asks a statistical question of many instances at once — is the instance space large
enough, does a question give its own answer away more often than it names other answers, do
sizes grow with difficulty beyond noise, does a cheap trick pay too often — so each states its
estimate in the detail, passed or not. Pure functions over what the harness reported.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from typing import Any

from resyn.contract import (
    DIFFICULTIES,
    GRADED_MIN_T,
    LEAK_MIN_CHARS,
    MIN_INSTANCE_SPACE,
    SHORTCUT_MARGIN,
    SHORTCUT_SHARE,
)
from resyn.tools.checks import Result, shown, skipped, where

_ECHOES_OF_THE_LEVEL = {"difficulty", "level"}  # meta that repeats the argument says nothing of size
_IMPLAUSIBLE = 0.01  # a repeat count this unlikely for a space of MIN_INSTANCE_SPACE questions fails


def _by_difficulty(instances: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    levels: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for call in instances:
        levels[call["difficulty"]].append(call)
    return levels


def _poisson_tail(at_least: int, mean: float) -> float:
    """P(X >= at_least) for X ~ Poisson(mean)."""
    below = sum(math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1)) for k in range(at_least))
    return max(0.0, 1.0 - below)


def diverse(instances: list[dict[str, Any]]) -> Result:
    """The instance space at each difficulty, estimated from repeated questions among the draws.

    With n draws from a space of N equally likely questions, about n(n-1)/2N pairs repeat; the
    estimate is n(n-1)/2 over the repeats seen (for an uneven space: the size of an even one that
    repeats as often). A level fails when its repeats would be implausible (p < 1%) for a space of
    MIN_INSTANCE_SPACE questions, so a few repeats among few draws do not fail a large space.
    """
    levels = {level: calls for level, calls in _by_difficulty(instances).items() if len(calls) >= 2}
    if not levels:
        return skipped("fewer than two well-formed instances at every difficulty")
    failures, estimates = [], []
    for difficulty in sorted(levels):
        questions = [call["instance"]["question"] for call in levels[difficulty]]
        draws, pairs = len(questions), len(questions) * (len(questions) - 1) // 2
        repeats = sum(count * (count - 1) // 2 for count in Counter(questions).values())
        if not repeats:
            estimates.append((math.inf, f"no repeat among {draws} draws at difficulty={difficulty}"))
            continue
        estimate = pairs / repeats
        said = (
            f"difficulty={difficulty}: about {estimate:.0f} distinct questions "
            f"({len(set(questions))} distinct among {draws} draws, {repeats} repeated pairs)"
        )
        estimates.append((estimate, said))
        if _poisson_tail(repeats, pairs / MIN_INSTANCE_SPACE) < _IMPLAUSIBLE:
            failures.append(said)
    if failures:
        more = f" (and {len(failures) - 1} more levels)" if len(failures) > 1 else ""
        return False, f"{failures[0]}; training needs at least {MIN_INSTANCE_SPACE}{more}"
    return True, min(estimates)[1]


def _leak_rates(level: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float, float]:
    """The instances whose question holds their own witness; how often that happens; and how often a
    question holds another instance's (different) witness: the rate a closed answer set explains."""
    witnesses = [call["instance"]["witness"].strip() for call in level]
    questions = [call["instance"]["question"] for call in level]
    long = [index for index, witness in enumerate(witnesses) if len(witness) >= LEAK_MIN_CHARS]
    leaking = [level[index] for index in long if witnesses[index] in questions[index]]
    crossings = cross_pairs = 0
    for index, question in enumerate(questions):
        for other in long:
            if witnesses[other] != witnesses[index]:
                cross_pairs += 1
                crossings += witnesses[other] in question
    own_rate = len(leaking) / len(long) if long else 0.0
    return leaking, own_rate, crossings / cross_pairs if cross_pairs else 0.0


def no_leak(instances: list[dict[str, Any]]) -> Result:
    """No question gives its witness away, unless every candidate answer appears in it as well.

    A witness long enough that a match is no coincidence (LEAK_MIN_CHARS) leaks when it appears in
    its own question at least twice as often as other instances' witnesses appear there. Where they
    appear about as often, the question offers a closed set of answers — multiple choice, "write
    'infeasible'", name one of the listed people — and naming the answer among them gives nothing away.
    """
    if not instances:
        return skipped("no well-formed instance to look at")
    leaks, closed = [], []
    for difficulty, level in sorted(_by_difficulty(instances).items()):
        leaking, own_rate, cross_rate = _leak_rates(level)
        if not leaking:
            continue
        rates = (
            f"own witness in {own_rate:.0%} of questions, another instance's in {cross_rate:.0%} "
            f"(difficulty={difficulty})"
        )
        if cross_rate >= own_rate / 2:
            closed.append(f"a closed set of answers: {rates}")
            continue
        call = leaking[0]
        leaks.append(
            f"the witness {shown(call['instance']['witness'].strip())} appears verbatim in the question "
            f"({where(call)}), in {len(leaking)} of {len(level)} instances; {rates}"
        )
    if leaks:
        more = f" (and {len(leaks) - 1} more levels)" if len(leaks) > 1 else ""
        return False, leaks[0] + more
    return True, closed[0] if closed else ""


def _sizes(call: dict[str, Any]) -> dict[str, float]:
    """What an instance reports about its size: meta's numbers and lengths, and the question's length."""
    sizes = {"the question's length": float(len(call["instance"]["question"]))}
    for key, value in call["instance"]["meta"].items():
        if isinstance(value, bool) or str(key).lower() in _ECHOES_OF_THE_LEVEL:
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            sizes[f"meta[{key!r}]"] = float(value)
        elif isinstance(value, list | dict | str):
            sizes[f"len(meta[{key!r}])"] = float(len(value))
    return sizes


def _growth(easy: list[float], hard: list[float]) -> float:
    """Welch's t statistic of hard over easy (±inf when both are constant and differ)."""
    difference = statistics.fmean(hard) - statistics.fmean(easy)
    spread = math.sqrt(statistics.variance(hard) / len(hard) + statistics.variance(easy) / len(easy))
    if spread == 0:
        return math.copysign(math.inf, difference) if difference else 0.0
    return difference / spread


def graded(instances: list[dict[str, Any]]) -> Result:
    """Level 5 is bigger than level 1: some reported size grows by more than GRADED_MIN_T standard errors.

    Sizes are meta's numbers and the lengths of its lists, strings and dicts, and the question's
    length. Levels 1 and 5 draw different seeds, so a generator that ignores `difficulty` shows
    differences too; the t statistic tells those (noise) from a real step up.
    """
    levels = _by_difficulty(instances)
    easiest, hardest = levels.get(DIFFICULTIES[0], []), levels.get(DIFFICULTIES[-1], [])
    if len(easiest) < 2 or len(hardest) < 2:
        return skipped("fewer than two well-formed instances at difficulty 1 or 5")
    easy_sizes, hard_sizes = [_sizes(call) for call in easiest], [_sizes(call) for call in hardest]
    measured = set.intersection(*(set(sizes) for sizes in easy_sizes + hard_sizes))
    growths = []
    for size in sorted(measured):
        easy = [sizes[size] for sizes in easy_sizes]
        hard = [sizes[size] for sizes in hard_sizes]
        growths.append((_growth(easy, hard), size, statistics.fmean(easy), statistics.fmean(hard)))
    t, size, easy_mean, hard_mean = max(growths)
    said = f"{size}: {easy_mean:.4g} on average at difficulty 1, {hard_mean:.4g} at difficulty 5"
    if t > GRADED_MIN_T:
        return True, said
    return False, (
        f"nothing the generator reports grows from difficulty 1 to 5 beyond noise; the most: {said} "
        f"(t={t:.1f}, needs > {GRADED_MIN_T:g}) — report the sizes difficulty sets in meta"
    )


def shared_answer_rate(instances: list[dict[str, Any]]) -> float:
    """How often two different questions of one difficulty have the same witness: a small answer
    space (yes/no, a 2-bit code) makes any fixed answer pay this often, trick or not."""
    pairs = shared = 0
    for level in _by_difficulty(instances).values():
        for one in level:
            for other in level:
                if one["instance"]["question"] != other["instance"]["question"]:
                    pairs += 1
                    shared += one["instance"]["witness"] == other["instance"]["witness"]
    return shared / pairs if pairs else 0.0


def no_shortcut(scores: dict[str, dict[str, float]], shared_rate: float) -> Result:
    """No trick derived from the question (tools/shortcuts.py) scores 1.0 on too many instances.

    `scores` maps each instance key to the score of each rule's answer. A rule fails when it pays on
    more than SHORTCUT_SHARE of the instances, or, in a small answer space where different questions
    share their answer `shared_rate` of the time, more than SHORTCUT_MARGIN above that: a policy
    gets most of its early reward from such a trick and stops learning, while a yes/no answer that
    any constant guess pays half the time is not a shortcut.
    """
    if not scores:
        return skipped("no well-formed instance to try shortcuts on")
    paid: Counter[str] = Counter()
    for rule_scores in scores.values():
        paid.update(rule for rule, score in rule_scores.items() if score == 1.0)
    allowed = max(SHORTCUT_SHARE, shared_rate + SHORTCUT_MARGIN)
    guessing = f"different questions share their answer in {shared_rate:.0%} of pairs"
    if not paid:
        return True, f"no shortcut scored 1.0 on any of {len(scores)} instances"
    rule, hits = paid.most_common(1)[0]
    said = f"answering with {rule} scores 1.0 on {hits} of {len(scores)} instances ({hits / len(scores):.0%})"
    if hits / len(scores) > allowed:
        return False, f"{said}; at most {allowed:.0%} may ({guessing})"
    return True, f"the best shortcut: {said} ({guessing})"
