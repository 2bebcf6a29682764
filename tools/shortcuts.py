"""Answers a policy could derive from a question without reasoning: what `no_shortcut` tries.

An RL policy finds a fixed trick that pays within a few hundred steps — copy the first premise,
repeat the last number, name the first listed option — and then learns nothing else. Each trick
here is a rule that maps a question to one answer; the validator scores each rule's answer on
every sampled instance and `checks.no_shortcut` judges how often it paid. Pure text functions, run
on the host.
"""

from __future__ import annotations

import re
from typing import Any

_LABEL = re.compile(
    r"^\s*(?:[-*•·]|\(?[A-Za-z0-9]{1,3}[.):]|\.\d+\.|(?:premise|statement|clue)\s*\d*\s*:)\s*", re.I
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_QUOTED = re.compile(r"\"([^\"\n]{1,200})\"|“([^”\n]{1,200})”|'([^'\n]{1,200})'|`([^`\n]{1,200})`")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_LISTED = re.compile(r":\s*([^:\n]+)$")
_LIST_SEPARATOR = re.compile(r"\s*(?:,|;|\bor\b|\band\b)\s*")
_VARIABLE = re.compile(r"(?<![A-Za-z])([A-Z])(?![A-Za-z])")
_LOGIC_MARKS = re.compile(r"[∧∨¬→↔⊢⊨]|\bpremises?\b|\bentail|\bconclu", re.I)
_POSITIONS = {"first": 0, "second": 1, "third": 2, "last": -1}
_MAX_LINES = 40  # a fixed template puts its first premise on the same line every time: try each line
_MAX_LISTS = 6
_MAX_ANSWER_CHARS = 500


def _by_position(kind: str, items: list[str]) -> dict[str, str]:
    """`first line`, `second line`, … `last line` for a list of candidate answers."""
    rules = {}
    for word, index in _POSITIONS.items():
        if (index == -1 and len(items) < 2) or index >= len(items):
            continue
        rules[f"the {word} {kind}"] = items[index]
    return rules


def _numbers(question: str) -> dict[str, str]:
    texts = _NUMBER.findall(question)
    rules = _by_position("number in the question", texts)
    if len(texts) >= 2:
        values = [float(text) for text in texts]
        rules["the largest number in the question"] = texts[values.index(max(values))]
        rules["the smallest number in the question"] = texts[values.index(min(values))]
    return rules


def _lists(lines: list[str]) -> list[list[str]]:
    """The lists a question holds: runs of bulleted or labelled lines, and lists after a colon."""
    lists, run = [], []
    for line in [*lines, ""]:
        item = _LABEL.sub("", line) if _LABEL.match(line) else ""
        if item:
            run.append(item)
            continue
        if len(run) >= 2:
            lists.append(run)
        run = []
        match = _LISTED.search(line)
        if match:
            items = [item for item in _LIST_SEPARATOR.split(match.group(1).rstrip(".?!")) if item]
            if 2 <= len(items) <= 12:
                lists.append(items)
    return lists


def _contradictions(question: str) -> dict[str, str]:
    """For logic questions: a contradiction built from the question's first variable (it entails anything)."""
    if not _LOGIC_MARKS.search(question):
        return {}
    match = _VARIABLE.search(question)
    variable = match.group(1) if match else "P"
    forms = (f"({variable} ∧ ¬{variable})", f"{variable} and not {variable}", f"{variable} & ~{variable}")
    return {f"the contradiction {form!r}": form for form in forms}


def _each_line(lines: list[str]) -> dict[str, str]:
    rules = {}
    for number, line in enumerate(lines[:_MAX_LINES], 1):
        rules[f"line {number} of the question"] = line
        if _LABEL.match(line):
            rules[f"line {number} of the question without its label"] = _LABEL.sub("", line)
    if lines:
        rules["the last line of the question"] = lines[-1]
    return rules


def shortcut_answers(question: str) -> dict[str, str]:
    """Each rule's answer for this question, keyed by a description of the rule ("line 3 of …")."""
    lines = [line.strip() for line in question.splitlines() if line.strip()]
    sentences = [part.strip() for part in _SENTENCE_END.split(" ".join(lines)) if part.strip()]
    quoted = [next(group for group in match.groups() if group) for match in _QUOTED.finditer(question)]
    rules = {
        **_each_line(lines),
        **_by_position("sentence of the question", sentences),
        **_by_position("quoted text in the question", quoted),
        **_numbers(question),
        **_contradictions(question),
    }
    for number, items in enumerate(_lists(lines)[:_MAX_LISTS], 1):
        rules.update(_by_position(f"item of list {number} in the question", items))
    return {rule: answer[:_MAX_ANSWER_CHARS] for rule, answer in rules.items() if answer.strip()}


def shortcut_jobs(
    instances: list[dict[str, Any]],
) -> tuple[list[list[Any]], list[str], list[list[str]]]:
    """The verify jobs that score every rule's answer on every instance, for `harness.verify`.

    Returns the jobs ([instance key, answer index]), the distinct answers, and for each job the rules
    it stands for: an answer two rules share on one instance is scored once and counts for both.
    """
    answers: dict[str, int] = {}
    jobs, rules = [], []
    for call in instances:
        key = f"{call['seed']}:{call['difficulty']}"
        by_answer: dict[str, list[str]] = {}
        for rule, answer in shortcut_answers(call["instance"]["question"]).items():
            by_answer.setdefault(answer, []).append(rule)
        for answer, answer_rules in by_answer.items():
            jobs.append([key, answers.setdefault(answer, len(answers))])
            rules.append(answer_rules)
    return jobs, list(answers), rules
