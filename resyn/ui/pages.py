"""What each page of `resyn ui` shows, as plain data: the server renders it, the tests read it.

Everything here reads the library and the trace store (through `environment_story`, the same
object `resyn trace --json` prints) and shapes it for a template: no HTML is built in Python, so
the templates' autoescaping is the one place untrusted text (environment code, LLM messages)
meets the page. One module for all pages (past 300 lines): they share the row shapes and
filters, and each page's function is short.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from resyn.contract import Status
from resyn.memory.library import Library
from resyn.memory.records import EnvironmentRecord
from resyn.memory.traces import TraceStore, environment_story

LIST_LIMIT = 500  # rows on one environments page; the filters narrow the rest


@dataclass(frozen=True)
class Filters:
    """The environments list's query: every field optional, text fields match case-insensitively."""

    status: str = ""
    topic: str = ""
    reason: str = ""
    job: str = ""
    job_in_path: bool = False  # on a job's page the job is in the path, not in the query

    def matches(self, record: EnvironmentRecord) -> bool:
        return (
            (not self.status or record.status == self.status)
            and (not self.job or record.job == self.job)
            and self.topic.casefold() in record.topic.casefold()
            and self.reason.casefold() in record.reason.casefold()
        )

    def query(self, **changes: str) -> str:
        """The query string of these filters with some changed (for the status links)."""
        fields = {"status": self.status, "topic": self.topic, "reason": self.reason} | changes
        if not self.job_in_path:
            fields["job"] = self.job
        return "&".join(f"{key}={quote(value, safe='')}" for key, value in fields.items() if value)


# ---- jobs -------------------------------------------------------------------------------------------


def job_rows(library: Library) -> list[dict[str, Any]]:
    rows = []
    for record in library.jobs():
        counts = library.job_counts(record.name)
        rows.append(
            {
                "name": record.name,
                "state": record.state,
                "accepted": counts.accepted,
                "target": record.options.get("target"),
                "tried": counts.tried,
                "by_status": counts.present(),
                "tokens": counts.tokens,
                "seeds": record.options.get("seed_topics", []),
                "stop_reason": record.stop_reason,
                "created": record.created,
                "updated": record.updated,
            }
        )
    return rows


def job_log(traces: TraceStore, job: str) -> list[dict[str, Any]]:
    """The job's own events (start, scout, rounds, verdicts, stop) as lines with their time."""
    events = traces.job_events(job)
    first = events[0]["started"] if events else 0.0
    return [
        {
            "offset": event["started"] - first,
            "name": event["name"],
            "line": event["data"].get("line", ""),
            "environment_id": event["data"].get("environment_id"),
        }
        for event in events
    ]


# ---- environments -----------------------------------------------------------------------------------


def environment_rows(library: Library, filters: Filters) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The environments that match (oldest first) and, per status, how many the scope holds."""
    scope = [record for record in library.environments() if not filters.job or record.job == filters.job]
    counts = {status: n for status in Status if (n := sum(record.status == status for record in scope))}
    rows = [
        {
            "id": record.id,
            "name": record.name or "",
            "topic": record.topic,
            "status": record.status,
            "reason": record.reason,
            "job": record.job,
            "tokens": record.input_tokens + record.output_tokens,
            "created": record.created,
        }
        for record in scope
        if filters.matches(record)
    ]
    return rows, counts


# ---- one environment ----------------------------------------------------------------------------------


def environment_page(library: Library, traces: TraceStore, environment_id: str) -> dict[str, Any]:
    """Everything the environment page shows (raises UnknownEnvironment)."""
    story = environment_story(library, traces, environment_id)
    steps = story["steps"]
    return {
        "environment": story["environment"],
        "timeline": timeline(steps),
        "attempts": [attempt_view(attempt) for attempt in story["attempts"]],
        "chart": pass_rate_chart(story["probe"].get("pass_rates")),
        "instances": probe_rows(story["probe"].get("instances", []), steps),
        "llm_calls": [llm_call_view(event) for event in story["llm_calls"]],
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


CHART_HEIGHT = 120  # px of a 100 % bar
CHART_BAR = 44
CHART_GAP = 16


def pass_rate_chart(pass_rates: dict[str, float] | None) -> dict[str, Any] | None:
    """Bar geometry for the pass-rate chart (an inline SVG): one bar per difficulty."""
    if not pass_rates:
        return None
    bars = []
    for position, (level, rate) in enumerate(pass_rates.items()):
        height = round(CHART_HEIGHT * max(0.0, min(1.0, rate)))
        bars.append(
            {
                "label": f"d{level}",
                "rate": rate,
                "percent": f"{100 * rate:.0f}%",
                "x": CHART_GAP + position * (CHART_BAR + CHART_GAP),
                "y": 20 + CHART_HEIGHT - height,
                "height": height,
            }
        )
    return {
        "bars": bars,
        "bar_width": CHART_BAR,
        "width": CHART_GAP + len(bars) * (CHART_BAR + CHART_GAP),
        "height": CHART_HEIGHT + 44,
        "base": 20 + CHART_HEIGHT,
    }


def probe_rows(instances: list[dict[str, Any]], steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The probe's instances, each with the solver's answer when the trace holds it."""
    answers = {
        answer["index"]: answer
        for step in steps
        if step["name"] == "solve"
        for answer in step["data"].get("answers", [])
    }
    return [
        {
            "difficulty": instance.get("difficulty"),
            "seed": instance.get("seed"),
            "question": instance.get("question", ""),
            "witness": instance.get("witness", ""),
            "answer": answers.get(index, {}).get("answer"),
            "error": answers.get(index, {}).get("error"),
        }
        for index, instance in enumerate(instances)
    ]


_CALL_FIELDS = ("role", "model", "messages", "reply", "error", "input_tokens", "output_tokens")


def llm_call_view(event: dict[str, Any]) -> dict[str, Any]:
    data = event["data"]
    return {
        "role": data.get("role", event["name"]),
        "step": event.get("step") or "",
        "model": data.get("model", ""),
        "offset": event.get("offset", 0.0),
        "seconds": event["seconds"],
        "input_tokens": data.get("input_tokens", 0),
        "output_tokens": data.get("output_tokens", 0),
        "messages": [
            {"role": message.get("role", "?"), "content": message.get("content", "")}
            for message in data.get("messages", [])
        ],
        "reply": data.get("reply"),
        "error": data.get("error"),
        "extra": {key: value for key, value in data.items() if key not in _CALL_FIELDS},
    }
