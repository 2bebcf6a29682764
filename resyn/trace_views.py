"""Rich renderings of traces: one environment's timeline, and a job's summary."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from resyn.contract import Status
from resyn.memory.records import EnvironmentRecord, JobCounts, JobRecord
from resyn.views import environment_panel, status_text

_MESSAGE_CHARS = 2000


def step_outcome_text(step: dict[str, Any]) -> Text:
    """One line saying what a step decided."""
    data, name = step["data"], step["name"]
    if "error" in data:
        return Text(f"failed: {data['error']}", style="magenta")
    if data.get("status"):
        return Text.assemble(status_text(data["status"]), f": {data.get('reason', '')}")
    if name in ("draft", "repair"):
        return Text(f"no usable code: {data['problem']}" if data.get("problem") else "wrote a version")
    if "report" in data:
        report = data["report"]
        if report["valid"]:
            return Text("valid", style="green")
        return Text("invalid: " + ", ".join(check["name"] for check in report["failed"]), style="red")
    if "instances" in data:
        return Text(f"{len(data['instances'])} probe instances")
    if name == "novelty":
        flag = data.get("contamination")
        return Text(f"novel; contamination: {flag['task']}" if flag else "novel")
    if name == "solve":
        answer = (data.get("answers") or [{}])[0]
        return Text(f"probe {answer.get('index')}: {answer.get('answer')!r:.50}")
    if data.get("pass_rates"):
        return Text(" ".join(f"d{level}={rate:.2f}" for level, rate in data["pass_rates"].items()))
    return Text("")


def timeline_table(story: dict[str, Any]) -> Table:
    """A row per step; the solver probes, which run in parallel, share one row."""
    table = Table(title="timeline", title_justify="left")
    for column, justify in (("at s", "right"), ("step", "left"), ("took s", "right"), ("LLM", "right"),
                            ("kernel", "right"), ("outcome", "left")):  # fmt: skip
        table.add_column(column, justify=justify, overflow="fold" if column == "outcome" else "ellipsis")
    by_span: dict[str, list[dict[str, Any]]] = {}
    for event in story["events"]:
        if event["kind"] != "step" and event["span"]:
            by_span.setdefault(event["span"], []).append(event)
    for group in _grouped_steps(story["steps"]):
        inside = [event for step in group for event in by_span.get(step["span"], [])]
        calls = [event for event in inside if event["kind"] == "llm_call"]
        kernel = [event for event in inside if event["kind"] == "kernel"]
        tokens = sum(c["data"].get("input_tokens", 0) + c["data"].get("output_tokens", 0) for c in calls)
        first = group[0]
        took = max(step["offset"] + step["seconds"] for step in group) - first["offset"]
        table.add_row(
            f"{first['offset']:.2f}",
            first["name"] + (f" ×{len(group)}" if len(group) > 1 else ""),
            f"{took:.2f}",
            f"{len(calls)} · {tokens:,} tok" if calls else "",
            f"{len(kernel)} · {sum(k['seconds'] for k in kernel):.2f}s" if kernel else "",
            _probe_outcome(group) if len(group) > 1 else step_outcome_text(first),
        )
    return table


def _grouped_steps(steps: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: list[list[dict[str, Any]]] = []
    for step in steps:
        if groups and step["name"] == "solve" and groups[-1][0]["name"] == "solve":
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups


def _probe_outcome(group: list[dict[str, Any]]) -> Text:
    answers = [answer for step in group for answer in step["data"].get("answers", [])]
    failed = sum(1 for step in group if "error" in step["data"]) + sum(1 for a in answers if a.get("error"))
    text = f"{len(answers)} probes answered"
    return Text(text + (f", {failed} failed" if failed else ""), style="magenta" if failed else "")


def attempts_view(story: dict[str, Any]) -> list[RenderableType]:
    views: list[RenderableType] = []
    for attempt in story["attempts"]:
        title = f"attempt {attempt['number']} ({attempt['kind']})"
        parts: list[RenderableType] = []
        if attempt["problem"]:
            parts.append(Text(f"no usable code: {attempt['problem']}", style="red"))
        elif attempt["report"]:
            report = attempt["report"]
            failed = [check for check in report["checks"] if not check["passed"] and not check["skipped"]]
            parts.append(Text("valid", style="green") if report["valid"] else Text("invalid", style="red"))
            for check in failed:
                parts.append(Text.assemble(("  ✗ ", "red"), (check["name"], "bold"), f": {check['detail']}"))
        if attempt["diff"]:
            parts.append(Syntax(attempt["diff"], "diff", theme="ansi_dark", word_wrap=True))
        views.append(Panel(Group(*parts), title=title, title_align="left"))
    return views


def messages_view(story: dict[str, Any], full: bool) -> list[RenderableType]:
    limit = None if full else _MESSAGE_CHARS
    views: list[RenderableType] = []
    for call in story["llm_calls"]:
        data = call["data"]
        parts: list[RenderableType] = []
        for message in data["messages"]:
            parts.append(Text(f"── {message['role']}", style="bold cyan"))
            parts.append(Text(_cut(message["content"], limit)))
        parts.append(Text("── reply" if "reply" in data else "── error", style="bold green"))
        parts.append(Text(_cut(data.get("reply") or data.get("error", ""), limit)))
        tokens = f"{data.get('input_tokens', 0):,} in / {data.get('output_tokens', 0):,} out"
        title = f"{call['name']} · {data['model']} · {call['seconds']:.2f} s · {tokens} · step {call['step']}"
        views.append(Panel(Group(*parts), title=title, title_align="left"))
    return views


def _cut(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[:limit] + f"\n… ({len(text) - limit:,} more characters; --full shows them)"


def environment_trace(story: dict[str, Any], *, messages: bool, full: bool) -> Group:
    record = EnvironmentRecord.model_validate(story["environment"])
    roles = Counter()
    for call in story["llm_calls"]:
        roles[call["name"]] += call["data"].get("input_tokens", 0) + call["data"].get("output_tokens", 0)
    kernel = story["kernel"]
    summary = Text(
        f"LLM calls {len(story['llm_calls'])} ("
        + ", ".join(f"{role} {tokens:,} tok" for role, tokens in roles.items())
        + f") · kernel executions {kernel['executions']} ({kernel['seconds']:.2f} s"
        + (f", side effects refused: {len(kernel['side_effects'])}" if kernel["side_effects"] else "")
        + ")",
        style="dim",
    )
    parts: list[RenderableType] = [environment_panel(record), summary]
    if story["steps"]:
        parts.append(timeline_table(story))
    else:
        parts.append(
            Text("no trace recorded for this environment (made before tracing existed?)", style="dim")
        )
    parts += attempts_view(story)
    if messages:
        parts += messages_view(story, full)
    return Group(*parts)


def job_summary(job: JobRecord, counts: JobCounts, events: list[dict[str, Any]],
                environments: list[EnvironmentRecord]) -> Group:  # fmt: skip
    header = Text(
        f"job {job.name} · {job.status}"
        + (f" · {job.stop_reason}" if job.stop_reason else "")
        + f" · target {job.options['target']} · seeds: {', '.join(job.options['seed_topics'])}",
        style="bold",
    )
    totals = Table(title="verdicts", title_justify="left")
    totals.add_column("status")
    totals.add_column("count", justify="right")
    for status, count in counts.present().items():
        totals.add_row(status_text(status), str(count))
    tokens = Text(f"tokens: {counts.input_tokens:,} in / {counts.output_tokens:,} out", style="dim")
    reasons = Counter(_reason_kind(record) for record in environments if record.status != Status.ACCEPTED)
    why = Table(title="why environments were rejected", title_justify="left")
    why.add_column("reason")
    why.add_column("count", justify="right")
    for reason, count in reasons.most_common(8):
        why.add_row(reason, str(count))
    table = Table(title="environments", title_justify="left")
    for column in ("id", "topic", "status", "reason"):
        table.add_column(column, overflow="fold" if column == "reason" else "ellipsis")
    for record in environments:
        table.add_row(record.id, record.topic, status_text(record.status), record.reason[:100])
    log = Table(title="events", title_justify="left", show_header=False)
    for event in events[-20:]:
        log.add_row(status_text(event["name"]), Text(event["data"].get("line", "")))
    return Group(header, totals, tokens, *([why] if reasons else []), table, log)


def _reason_kind(record: EnvironmentRecord) -> str:
    """A rejection grouped by its kind: the status and, for invalid ones, the first failed check."""
    if record.status == Status.INVALID and ": " in record.reason:
        return f"invalid: {record.reason.split(': ', 2)[1].split(':')[0]}"
    return record.status
