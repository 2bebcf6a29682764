"""The contract's checks, judged from what the kernel harness reported.

Pure functions over plain data (no kernels here), so each check's rule reads in one place.
A call stopped by a limit (timeout, memory) is judged by `within_limits` only; every other
check judges the calls that finished. Details name the seed and difficulty that failed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from resyn.contract import DIFFICULTIES, LEAK_MIN_CHARS, MAX_QUESTION_CHARS, NAME_LENGTH, NAME_PATTERN
from resyn.tools.kernel_sandbox import LIMIT_STATUSES

JUNK_ANSWERS = ["qzxv#9!kplm", "lorem ipsum dolor sit amet"]
# A (text, times) pair stands for text * times: long answers cross to the kernel as a few bytes.
HOSTILE_ANSWERS: list[str | tuple[str, int]] = [
    ("A", 100_000),
    ("9", 5_000),
    ("[", 5_000),
    ("{", 5_000),
    "-1",
    "1e309",
    "NaN",
    "-inf",
    "ünïcödé 漢字 🙂 \u202e\u200b",
    "\x00\x01\x02",
    "   ",
    "\n\n\t",
    '{"answer": [1, 2, {"a": null}]}',
    "__import__('os').system('echo hi')",
    "<answer>1</answer>",
    "None",
    "0.5",
    ", , ,",
    "1/0",
    "[[[]]]",
]


def expand(answer: str | tuple[str, int]) -> str:
    return answer if isinstance(answer, str) else answer[0] * answer[1]


def shown(answer: str) -> str:
    """An answer as a detail line shows it: quoted, cut at 40 characters."""
    return repr(answer[:40]) + ("…" if len(answer) > 40 else "")


DIVERSITY_FLOOR = 0.9
REJECTION_FLOOR = 0.5

Result = tuple[bool, str]


def where(call: dict[str, Any]) -> str:
    return f"seed={call['seed']}, difficulty={call['difficulty']}"


def _first(failures: list[str]) -> Result:
    if not failures:
        return True, ""
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return False, failures[0] + more


def loads(load: dict[str, Any]) -> Result:
    if load["status"] != "ok":
        return False, f"loading the file failed: {load.get('error')}"
    problems = list(load.get("problems", []))
    name = load.get("name")
    if isinstance(name, str) and not (
        NAME_LENGTH[0] <= len(name) <= NAME_LENGTH[1] and NAME_PATTERN.match(name)
    ):
        problems.insert(
            0, f"NAME {name!r} is not kebab-case [a-z0-9-], {NAME_LENGTH[0]}..{NAME_LENGTH[1]} chars"
        )
    return _first(problems)


def shape_problem(instance: Any) -> str | None:
    if not isinstance(instance, dict):
        return f"returned {type(instance).__name__}, not a dict"
    question, witness, meta = instance.get("question"), instance.get("witness"), instance.get("meta")
    if not isinstance(question, str) or not question.strip():
        return "question must be a non-empty str"
    if len(question) > MAX_QUESTION_CHARS:
        return f"question has {len(question)} chars (at most {MAX_QUESTION_CHARS})"
    if not isinstance(witness, str):
        return f"witness must be a str (got {type(witness).__name__})"
    if not isinstance(meta, dict):
        return f"meta must be a dict (got {type(meta).__name__})"
    return None


def generate_failure(call: dict[str, Any]) -> str | None:
    """Why a generate call gave no usable instance (it failed, or its instance is malformed), or None."""
    problem = call.get("error") or call.get("problem") or shape_problem(call.get("instance"))
    if call["status"] == "ok" and not problem:
        return None
    return problem or call["status"]


def generates(calls: list[dict[str, Any]]) -> Result:
    failures = []
    for call in calls:
        if call["status"] == "error":
            failures.append(f"generate({where(call)}) raised {call['error']}")
        elif call["status"] == "ok":
            problem = call.get("problem") or shape_problem(call.get("instance"))
            if problem:
                failures.append(f"generate({where(call)}): {problem}")
    if not any(call["status"] == "ok" for call in calls):
        failures.append("no call of generate finished")
    return _first(failures)


def well_formed(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The generate calls whose instance has the contract's shape: the ones later checks use."""
    return [
        call
        for call in calls
        if call["status"] == "ok" and "instance" in call and not shape_problem(call["instance"])
    ]


def canonical(instance: dict[str, Any]) -> str:
    return json.dumps(instance, sort_keys=True, ensure_ascii=False)


def deterministic(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> Result:
    again = {(call["seed"], call["difficulty"]): call for call in second if call["status"] == "ok"}
    failures = []
    for call in first:
        other = again.get((call["seed"], call["difficulty"]))
        if call["status"] != "ok" or other is None:
            continue
        if canonical(call.get("instance", {})) != canonical(other.get("instance", {})):
            fields = sorted(
                key
                for key in set(call.get("instance", {})) | set(other.get("instance", {}))
                if call["instance"].get(key) != other["instance"].get(key)
            )
            failures.append(f"generate({where(call)}) differs between two kernels in: {', '.join(fields)}")
    return _first(failures)


def diverse(instances: list[dict[str, Any]]) -> Result:
    questions: dict[int, list[str]] = defaultdict(list)
    for call in instances:
        questions[call["difficulty"]].append(call["instance"]["question"])
    failures = []
    for difficulty in DIFFICULTIES:
        sample = questions.get(difficulty, [])
        if len(sample) >= 2 and len(set(sample)) / len(sample) < DIVERSITY_FLOOR:
            failures.append(
                f"difficulty={difficulty}: {len(set(sample))} distinct questions over {len(sample)} seeds"
            )
    return _first(failures)


def witness_accepted(calls: list[dict[str, Any]]) -> Result:
    failures = []
    for call in calls:
        if call["status"] == "error":
            failures.append(f"verify raised {call['error']} on the witness ({where(call)})")
        elif call["status"] == "ok" and call["score"] != 1.0:
            failures.append(
                f"verify scored {call['score_repr'] or call['score']} for the witness ({where(call)})"
            )
    return _first(failures)


def rejects_wrong(junk: list[dict[str, Any]], crossed: list[dict[str, Any]]) -> Result:
    failures = []
    for call in junk:
        if call["status"] == "ok" and call["score"] != 0.0:
            failures.append(
                f"verify scored {call['score']} for the wrong answer {call['shown']} ({where(call)})"
            )
    scored = [call for call in crossed if call["status"] == "ok" and call["score"] is not None]
    if scored:
        rejected = sum(call["score"] < 1.0 for call in scored)
        if rejected / len(scored) < REJECTION_FLOOR:
            accepted = len(scored) - rejected
            failures.append(f"verify accepted others' witnesses in {accepted} of {len(scored)} pairs")
    return _first(failures)


def robust(calls: list[dict[str, Any]]) -> Result:
    failures = []
    for call in calls:
        context = f"answer {call['shown']} ({where(call)})"
        if call["status"] == "error":
            failures.append(f"verify raised {call['error']} on {context}")
        elif call["status"] == "ok":
            if call["score_type"] not in ("float", "int"):
                failures.append(f"verify returned {call['score_type']}, not a float, on {context}")
            elif call["score"] is None or not 0.0 <= call["score"] <= 1.0:
                failures.append(
                    f"verify returned {call['score_repr'] or call['score']} (outside [0, 1]) on {context}"
                )
    return _first(failures)


def no_leak(instances: list[dict[str, Any]]) -> Result:
    failures = []
    for call in instances:
        witness = call["instance"]["witness"].strip()
        if len(witness) >= LEAK_MIN_CHARS and witness in call["instance"]["question"]:
            failures.append(f"the witness {witness[:40]!r} appears verbatim in the question ({where(call)})")
    return _first(failures)


def no_side_effects(events: list[dict[str, str]], leaked_secret: bool) -> Result:
    failures = [f"{event['kind']}: {event['event']} {event['detail']}".strip() for event in events]
    if leaked_secret:
        failures.insert(0, "a secret of the parent process (an API key) appeared in the environment's output")
    return _first(failures)


def within_limits(problems: list[str]) -> Result:
    return _first(problems)


def broke_limit(call: dict[str, Any], output_limit: int) -> bool:
    """Whether a harness call was stopped by a limit or printed past the output limit."""
    return call["status"] in LIMIT_STATUSES or call.get("output_chars", 0) > output_limit


def limit_problem(call: dict[str, Any], function: str, output_limit: int) -> str | None:
    """Why a harness call broke a limit, or None."""
    if call["status"] in LIMIT_STATUSES:
        return f"{function}({where(call)}) {call['error']}"
    if call.get("output_chars", 0) > output_limit:
        return f"{function}({where(call)}) printed {call['output_chars']} chars (limit {output_limit})"
    return None
