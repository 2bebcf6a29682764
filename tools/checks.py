"""The contract's checks, judged from what the kernel harness reported.

Pure functions over plain data (no kernels here), so each check's rule reads in one place.
A call stopped by a limit (timeout, memory) is judged by `within_limits` only; every other
check judges the calls that finished. Details name the seed and difficulty that failed.
"""

from __future__ import annotations

import json
import re
from typing import Any

from resyn.contract import MAX_QUESTION_CHARS, NAME_LENGTH, NAME_PATTERN, REJECTION_FLOOR
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


Result = tuple[bool | None, str]  # passed (None: skipped, nothing to look at), and the detail


def skipped(reason: str) -> Result:
    return None, reason


def where(call: dict[str, Any]) -> str:
    return f"seed={call['seed']}, difficulty={call['difficulty']}"


def first_of(failures: list[str], noun: str, out_of: int | None = None) -> Result:
    """Passed when there is no failure; else the first one, and how many more of what there are:
    "(and 39 more of the 40 instances compared)", "(and 2 more generate calls)"."""
    if not failures:
        return True, ""
    if len(failures) == 1:
        return False, failures[0]
    more = len(failures) - 1
    counted = f"{more} more of the {out_of} {noun}" if out_of else f"{more} more {noun}"
    return False, f"{failures[0]} (and {counted})"


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
    return first_of(problems, "problems")


_FUNCTION_PROBLEM = re.compile(r"^(generate|verify) ")


def usable(load: dict[str, Any]) -> bool:
    """Whether the loaded file can be checked further: it ran and defines generate and verify.

    A problem with NAME, TOPIC or DESCRIPTION fails `loads` but must not hide the defects the other
    checks would find (a badly named file that also leaks its answer should hear about both).
    """
    return load["status"] == "ok" and not any(
        _FUNCTION_PROBLEM.match(problem) for problem in load.get("problems", [])
    )


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
    return first_of(failures, "generate calls")


def well_formed(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The generate calls whose instance has the contract's shape: the ones later checks use."""
    return [
        call
        for call in calls
        if call["status"] == "ok" and "instance" in call and not shape_problem(call["instance"])
    ]


def canonical(instance: dict[str, Any]) -> str:
    return json.dumps(instance, sort_keys=True, ensure_ascii=False)


CONTRAST_CHARS = 80  # each side of a `deterministic` detail
_CONTRAST_LEAD = 20  # characters of what both share, shown before the first difference

_NONDETERMINISM_CAUSES = (
    "likely causes: iterating a set (its order changes with PYTHONHASHSEED), hash() of strings, "
    "the global random module instead of random.Random(seed * 1000 + difficulty), or the clock"
)


def _first_difference(one: Any, other: Any, path: str = "") -> tuple[str, Any, Any]:
    """Where two JSON values first differ: (path, value in one, value in the other)."""
    if isinstance(one, dict) and isinstance(other, dict):
        for key in [*one, *(key for key in other if key not in one)]:  # generate's order: question first
            if one.get(key) != other.get(key):
                return _first_difference(one.get(key), other.get(key), f"{path}.{key}" if path else key)
    if isinstance(one, list) and isinstance(other, list) and len(one) == len(other):
        for index, (item, other_item) in enumerate(zip(one, other, strict=True)):
            if item != other_item:
                return _first_difference(item, other_item, f"{path}[{index}]")
    return path, one, other


def contrast(one: Any, other: Any, width: int = CONTRAST_CHARS) -> tuple[str, str]:
    """Two differing values as a detail shows them: quoted, each cut to `width` characters, from
    a little before where they first differ when that is further in (a question differing near its
    end shows its end, not the start both share)."""
    texts = [
        value if isinstance(value, str) else json.dumps(value, ensure_ascii=False) for value in (one, other)
    ]
    if texts[0] == texts[1]:  # the same text, different types: 5 and "5"
        texts = [json.dumps(value, ensure_ascii=False) for value in (one, other)]
    common = next(
        (index for index, (a, b) in enumerate(zip(*texts, strict=False)) if a != b), min(map(len, texts))
    )
    start = 0 if common < width - _CONTRAST_LEAD else common - _CONTRAST_LEAD
    first, second = (_window(text, start, width) for text in texts)
    return first, second


def _window(text: str, start: int, width: int) -> str:
    cut = text[start : start + width]
    return ("…" if start else "") + repr(cut) + ("…" if start + width < len(text) else "")


def deterministic(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> Result:
    again = {(call["seed"], call["difficulty"]): call for call in second if call["status"] == "ok"}
    pairs = [
        (call, again[(call["seed"], call["difficulty"])])
        for call in first
        if call["status"] == "ok" and (call["seed"], call["difficulty"]) in again
    ]
    if not pairs:
        return skipped("no instance was generated in both kernels")
    failures = []
    for call, other in pairs:
        if canonical(call.get("instance", {})) != canonical(other.get("instance", {})):
            path, one, two = _first_difference(call.get("instance"), other.get("instance"))
            one_text, two_text = contrast(one, two)
            failures.append(
                f"generate({where(call)}) gave a different {path or 'instance'} in a second kernel: "
                f"{one_text} vs {two_text}"
            )
    if failures:
        passed, detail = first_of(failures, "instances compared", len(pairs))
        return passed, f"{detail}; {_NONDETERMINISM_CAUSES}"
    return True, ""


_DIGIT_KEY = re.compile(r'"-?\\d+":')


def witness_accepted(calls: list[dict[str, Any]], instances: dict[str, dict[str, Any]]) -> Result:
    """verify(instance, witness) == 1.0; a failure shows the witness and the instance verify got."""
    finished = [call for call in calls if call["status"] in ("ok", "error")]
    if not finished:
        return skipped("no well-formed instance to verify the witness on")
    failures = []
    for call in finished:
        instance = instances[call["key"]]
        outcome = (
            f"raised {call['error']}"
            if call["status"] == "error"
            else f"scored {call['score_repr'] or call['score']}"
            if call["score"] != 1.0
            else None
        )
        if outcome is None:
            continue
        received = json.dumps(instance, ensure_ascii=False)
        failure = (
            f"verify {outcome} for the witness {shown(instance['witness'])} ({where(call)}); "
            f"it received the instance after a JSON round trip: {received[:200]}"
        )
        if _DIGIT_KEY.search(received):
            failure += " — note that JSON turns integer dict keys into strings"
        failures.append(failure)
    return first_of(failures, "instances", len(finished))


def rejects_wrong(junk: list[dict[str, Any]], crossed: list[dict[str, Any]]) -> Result:
    finished = [call for call in junk if call["status"] == "ok"]
    scored = [call for call in crossed if call["status"] == "ok" and call["score"] is not None]
    if not finished and not scored:
        return skipped("no well-formed instance to try wrong answers on")
    failures = [
        f"verify scored {call['score']} for the wrong answer {call['shown']} ({where(call)})"
        for call in finished
        if call["score"] != 0.0
    ]
    if scored:
        rejected = sum(call["score"] < 1.0 for call in scored)
        if rejected / len(scored) < REJECTION_FLOOR:
            accepted = len(scored) - rejected
            failures.append(
                f"verify accepted others' witnesses in {accepted} of {len(scored)} pairs "
                f"(at most {1 - REJECTION_FLOOR:.0%} may score 1.0)"
            )
    return first_of(failures, "wrong answers")


def robust(calls: list[dict[str, Any]]) -> Result:
    if not any(call["status"] in ("ok", "error") for call in calls):
        return skipped("no well-formed instance to try hostile answers on")
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
    return first_of(failures, "answers tried")


def no_side_effects(events: list[dict[str, str]], leaked_secret: bool) -> Result:
    failures = [f"{event['kind']}: {event['event']} {event['detail']}".strip() for event in events]
    if leaked_secret:
        failures.insert(0, "a secret of the parent process (an API key) appeared in the environment's output")
    return first_of(failures, "side effects")


def within_limits(problems: list[str]) -> Result:
    return first_of(problems, "limit problems")


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
