"""What one environment's page shows, as plain data: the story `resyn trace --json` prints, shaped
for the template (no HTML is built here: the templates' autoescaping is the one place untrusted
text — environment code, LLM messages — meets the page).

The probe's pieces are joined here: each solver call is tied, through its step's span, to the
probe instance it answered, so the instances table and the LLM calls show the same difficulty,
seed, answer and mark.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from resyn.contract import Status
from resyn.memory.library import Library
from resyn.memory.traces import TraceStore, environment_story
from resyn.ui.charts import pass_rate_chart

_DUPLICATE_OF = re.compile(r"\b(duplicate of )([0-9a-f]{6,})\b")


def linked_reason(reason: str) -> list[dict[str, str | None]]:
    """A reason as text pieces, the id in "duplicate of ID" becoming a link to that environment."""
    found = _DUPLICATE_OF.search(reason)
    if found is None:
        return [{"text": reason, "environment_id": None}]
    return [
        {"text": reason[: found.end(1)], "environment_id": None},
        {"text": found.group(2), "environment_id": found.group(2)},
        {"text": reason[found.end(2) :], "environment_id": None},
    ]


def environment_page(
    library: Library, traces: TraceStore, environment_id: str, job_state: str | None
) -> dict[str, Any]:
    """Everything the environment page shows (raises UnknownEnvironment); `job_state` is the state
    of the job it belongs to (None outside a job): a running environment of a job that no longer
    runs is unfinished, and only a live one's page reloads itself."""
    story = environment_story(library, traces, environment_id)
    steps, environment = story["steps"], story["environment"]
    instances = probe_rows(story["probe"].get("instances", []), steps)
    running = environment["status"] == Status.RUNNING
    live = running and job_state in (None, "running")
    probes = probe_of_span(steps, instances)
    return {
        "environment": environment,
        "shown_status": environment["status"] if live or not running else "unfinished",
        "live": live,
        "reason_parts": linked_reason(environment["reason"]),
        "timeline": timeline(steps),
        "attempts": [attempt_view(attempt) for attempt in story["attempts"]],
        "chart": pass_rate_chart(story["probe"].get("pass_rates")),
        "instances": instances,
        "scored": any(instance["score"] is not None for instance in instances),
        "llm_calls": [llm_call_view(event, probes) for event in story["llm_calls"]],
        "kernel": story["kernel"],
        "tokens": story["tokens"],
    }


def timeline(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per step; consecutive runs of one step (the parallel probe answers) share a row.

    `left` and `width` place the step's bar on the environment's whole span, in percent.
    """
    if not steps:
        return []
    start = min(step["offset"] for step in steps)
    total = max(step["offset"] + step["seconds"] for step in steps) - start or 1e-9
    rows = []
    for name, group in itertools.groupby(steps, key=lambda step: step["name"]):
        runs = list(group)
        begin = min(run["offset"] for run in runs)
        end = max(run["offset"] + run["seconds"] for run in runs)
        text, tone = step_outcome(name, [run["data"] for run in runs])
        rows.append(
            {
                "name": name,
                "count": len(runs),
                "offset": begin,
                "seconds": end - begin,
                "outcome": text,
                "tone": tone,
                "left": round(100 * (begin - start) / total, 2),
                "width": max(round(100 * (end - begin) / total, 2), 0.4),
            }
        )
    return rows


def step_outcome(name: str, runs: list[dict[str, Any]]) -> tuple[str, str]:
    """What a step decided, in words, and its tone ("good", "bad" or "")."""
    data = runs[-1]
    if name == "solve":  # the parallel probe answers: count them, and the calls that failed
        answers = [answer for run in runs for answer in run.get("answers", [])]
        failed = sum(1 for run in runs if run.get("error")) + sum(1 for a in answers if a.get("error"))
        text = f"{len(answers)} answer{'' if len(answers) == 1 else 's'}" + (
            f", {failed} failed: {_first_error(runs)}" if failed else ""
        )
        return text, "bad" if failed else ""
    if data.get("error"):
        return f"failed: {data['error']}", "bad"
    if data.get("status") and name != "verdict":
        return f"{data['status']}: {data.get('reason', '')}", "bad"
    if name in ("draft", "repair"):
        if data.get("problem"):
            return f"attempt {data.get('attempts')}: no usable code: {data['problem']}", "bad"
        return f"attempt {data.get('attempts')}: wrote a version", ""
    if name == "validate":
        report = data.get("report") or {}
        if report.get("valid"):
            return "valid", "good"
        return "invalid: " + ", ".join(check["name"] for check in report.get("failed", [])), "bad"
    if name == "sample_probe":
        return f"{len(data.get('instances', []))} probe instances", ""
    if name == "novelty":
        if data.get("contamination"):
            flag = data["contamination"]
            return f"near the benchmark question {flag.get('benchmark')}/{flag.get('task')}", "bad"
        return "novel", "good"
    if name == "score_probe":
        rates = data.get("pass_rates") or {}
        return " ".join(f"d{level}={rate:.2f}" for level, rate in rates.items()) or "waiting for answers", ""
    if name == "verdict":
        return f"{data.get('status', '')}: {data.get('reason', '')}", _tone(data.get("status"))
    return json.dumps(data, ensure_ascii=False, default=str)[:300], ""


def _first_error(runs: list[dict[str, Any]]) -> str:
    for run in runs:
        for error in [run.get("error"), *(answer.get("error") for answer in run.get("answers", []))]:
            if error:
                return str(error)
    return ""


def _tone(status: str | None) -> str:
    return "good" if status == Status.ACCEPTED else "bad" if status else ""


def attempt_view(attempt: dict[str, Any]) -> dict[str, Any]:
    report = attempt.get("report")
    if attempt.get("problem"):
        outcome, tone = f"no usable code: {attempt['problem']}", "bad"
    elif report is None:
        outcome, tone = "not validated", ""
    elif report["valid"]:
        outcome, tone = "valid", "good"
    else:
        failed = [check["name"] for check in report["checks"] if not check["passed"] and not check["skipped"]]
        outcome, tone = "invalid: " + ", ".join(failed), "bad"
    checks = [
        {
            "name": check["name"],
            "result": "skipped" if check["skipped"] else "passed" if check["passed"] else "failed",
            "detail": check["detail"],
        }
        for check in (report or {}).get("checks", [])
    ]
    source = attempt.get("source") or ""
    return {
        "number": attempt["number"],
        "kind": attempt["kind"],
        "outcome": outcome,
        "tone": tone,
        "checks": checks,
        "traceback": (report or {}).get("traceback"),
        "source_lines": source.splitlines(),
        "diff": side_by_side(attempt.get("diff") or ""),
    }


_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)")


def side_by_side(diff: str) -> list[dict[str, Any]]:
    """A unified diff as two-column rows: {kind, left_no, left, right_no, right}.

    kind is "hunk" (a header), "same", "change" (a removed line beside the added one that took its
    place), "removed" or "added"; a side with no line has None for its number and text.
    """
    rows: list[dict[str, Any]] = []
    removed: list[tuple[int, str]] = []
    added: list[tuple[int, str]] = []
    left = right = 0
    in_hunk = False

    def flush() -> None:
        for old, new in itertools.zip_longest(removed, added):
            kind = "change" if old and new else "removed" if old else "added"
            rows.append(
                {
                    "kind": kind,
                    "left_no": old[0] if old else None,
                    "left": old[1] if old else None,
                    "right_no": new[0] if new else None,
                    "right": new[1] if new else None,
                }
            )
        removed.clear()
        added.clear()

    for line in diff.splitlines():
        hunk = _HUNK.match(line)
        if hunk:
            flush()
            left, right, in_hunk = int(hunk.group(1)), int(hunk.group(2)), True
            rows.append({"kind": "hunk", "left_no": None, "left": line, "right_no": None, "right": None})
        elif not in_hunk or line.startswith("\\"):
            continue  # the file headers, and "\ No newline at end of file"
        elif line.startswith("-"):
            removed.append((left, line[1:]))
            left += 1
        elif line.startswith("+"):
            added.append((right, line[1:]))
            right += 1
        else:
            flush()
            text = line[1:]
            rows.append({"kind": "same", "left_no": left, "left": text, "right_no": right, "right": text})
            left, right = left + 1, right + 1
    flush()
    return rows


def probe_rows(instances: list[dict[str, Any]], steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The probe's instances, each with the solver's answer and its mark when the trace holds them.

    The score is verify's, from the `score_probe` step's `scores` (one per instance, None where
    the solver gave no answer); a trace without them marks only answers equal to the witness."""
    answers = {
        answer["index"]: answer
        for step in steps
        if step["name"] == "solve"
        for answer in step["data"].get("answers", [])
    }
    scored = next((step["data"] for step in reversed(steps) if step["name"] == "score_probe"), {})
    scores = scored.get("scores") if isinstance(scored.get("scores"), list) else []
    rows = []
    for index, instance in enumerate(instances):
        answer = answers.get(index, {})
        score = scores[index] if index < len(scores) else None
        row = {
            "index": index,
            "difficulty": instance.get("difficulty"),
            "seed": instance.get("seed"),
            "question": instance.get("question", ""),
            "witness": instance.get("witness", ""),
            "answer": answer.get("answer"),
            "error": answer.get("error"),
            "score": score,
        }
        rows.append(row | {"mark": answer_mark(row)})
    return rows


def answer_mark(row: dict[str, Any]) -> dict[str, str] | None:
    """✓, ✗ or a partial score for the solver's answer, with what it rests on; None: no answer."""
    if row["error"] or row["answer"] is None:
        return None
    score = row["score"]
    if score is None:
        if str(row["answer"]).strip() == str(row["witness"]).strip():
            return {"symbol": "✓", "tone": "good", "title": "the witness itself (the trace holds no score)"}
        return {"symbol": "?", "tone": "muted", "title": "not scored in this trace"}
    if score >= 1:
        return {"symbol": "✓", "tone": "good", "title": f"right: verify scored it {score:g}"}
    if score <= 0:
        return {"symbol": "✗", "tone": "bad", "title": f"wrong: verify scored it {score:g}"}
    return {"symbol": f"{score:.2f}", "tone": "", "title": f"partly right: verify scored it {score:g}"}


def probe_of_span(steps: list[dict[str, Any]], instances: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The probe instance each `solve` run answered, by the run's span (its LLM call shares it)."""
    by_span = {}
    for step in steps:
        answered = step["data"].get("answers", []) if step["name"] == "solve" else []
        if step.get("span") and answered and answered[0].get("index", -1) < len(instances):
            by_span[step["span"]] = instances[answered[0]["index"]]
    return by_span


_CALL_FIELDS = ("role", "model", "messages", "reply", "error", "input_tokens", "output_tokens")


def llm_call_view(event: dict[str, Any], probes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    data = event["data"]
    return {
        "role": data.get("role", event["name"]),
        "step": event.get("step") or "",
        "model": data.get("model", ""),
        "offset": event.get("offset", 0.0),
        "seconds": event["seconds"],
        "input_tokens": data.get("input_tokens", 0),
        "output_tokens": data.get("output_tokens", 0),
        "probe": probes.get(event.get("span") or ""),
        "messages": [
            {"role": message.get("role", "?"), "content": message.get("content", "")}
            for message in data.get("messages", [])
        ],
        "reply": data.get("reply"),
        "error": data.get("error"),
        "extra": {key: value for key, value in data.items() if key not in _CALL_FIELDS},
    }
