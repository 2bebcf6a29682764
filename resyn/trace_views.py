"""Rich renderings of traces: one environment's timeline, probe and LLM calls, and a job's story."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.rule import Rule
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from resyn.contract import Status
from resyn.memory.records import EnvironmentRecord, JobCounts, JobRecord, JobUsage
from resyn.views import environment_panel, status_text

_MESSAGE_CHARS = 2000
_ANSWER_CHARS = 24
ROLES = ("author", "solver", "scout")
STEP_ALIASES = {"probe": "solve"}  # the solver probe's calls run in the `solve` step


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
    if data.get("pass_rates"):
        return Text(" ".join(f"d{level}={rate:.2f}" for level, rate in data["pass_rates"].items()))
    return Text("")


def probe_results(story: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per probe question: its instance (difficulty, seed, witness), the solver's answer,
    the number of the LLM call that gave it, and its score where the trace records one.

    The solve steps name their question by index into the sample_probe step's instances; the
    score_probe step's `scores` (one per instance, None where the answer is missing) mark them."""
    sampled = [
        step for step in story["steps"] if step["name"] == "sample_probe" and "instances" in step["data"]
    ]
    if not sampled:
        return []
    scored = [step for step in story["steps"] if step["name"] == "score_probe" and "scores" in step["data"]]
    scores = scored[-1]["data"]["scores"] if scored else []
    call_of_span = {call["span"]: number for number, call in enumerate(story["llm_calls"], 1)}
    results = [
        {"index": index, "difficulty": instance["difficulty"], "seed": instance["seed"],
         "witness": instance["witness"], "answer": None, "error": None, "call": None,
         "score": scores[index] if index < len(scores) else None}
        for index, instance in enumerate(sampled[-1]["data"]["instances"])
    ]  # fmt: skip
    for step in (step for step in story["steps"] if step["name"] == "solve"):
        for answer in step["data"].get("answers", []):
            if answer["index"] < len(results):
                results[answer["index"]].update(
                    answer=answer["answer"], error=answer.get("error"), call=call_of_span.get(step["span"])
                )
    return results


def score_mark(result: dict[str, Any], unscored: str = "score not recorded") -> Text:
    """✓ right, ✗ wrong, the score when partial; why there is none otherwise."""
    score = result["score"]
    if result["error"]:
        return Text("no answer (call failed)", style="magenta")
    if score is None:
        return Text(unscored, style="dim")
    if score >= 1.0:
        return Text(f"✓ {score:.2f}", style="green")
    return Text(f"{'✗' if score == 0 else '~'} {score:.2f}", style="red" if score == 0 else "yellow")


def _short(value: str | None, limit: int = _ANSWER_CHARS) -> str:
    if value is None:
        return "—"
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


# table settings that leave the width to the values: no borders but the header's rule
_COMPACT: dict[str, Any] = {"box": box.SIMPLE_HEAD, "pad_edge": False, "title_justify": "left"}


def timeline_table(story: dict[str, Any]) -> Table:
    """A row per step; the solver probes, which run in parallel, share one row (the probe table
    below has one row per question)."""
    table = Table(title="timeline", **_COMPACT)
    for column, justify in (("at s", "right"), ("step", "left"), ("took s", "right"), ("LLM", "right"),
                            ("kernel", "right"), ("outcome", "left")):  # fmt: skip
        table.add_column(column, justify=justify, overflow="fold")
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
            f"{len(calls)}: {tokens:,} tok" if calls else "",
            f"{len(kernel)}: {sum(k['seconds'] for k in kernel):.2f} s" if kernel else "",
            _probe_outcome(story) if first["name"] == "solve" else step_outcome_text(first),
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


def _probe_outcome(story: dict[str, Any]) -> Text:
    results = probe_results(story)
    answered = [result for result in results if result["call"] and not result["error"]]
    failed = sum(1 for result in results if result["error"])
    scored = [result["score"] for result in answered if result["score"] is not None]
    text = f"{len(answered)} answered" + (f", {sum(s >= 1.0 for s in scored)} right" if scored else "")
    return Text(text + (f", {failed} failed" if failed else ""), style="magenta" if failed else "")


def probe_table(results: list[dict[str, Any]]) -> Table:
    """A row per probe question, tied to the call that answered it: `--messages` shows that call."""
    scored = [result["score"] for result in results if result["score"] is not None]
    title = f"probe: {len(results)} questions" + (
        f", {sum(score >= 1.0 for score in scored)} right"
        if scored
        else " (? : scores per question not recorded in this trace)"
    )
    table = Table(title=title, **_COMPACT)
    for column, justify in (("call", "right"), ("d", "right"), ("seed", "right"), ("answer", "left"),
                            ("witness", "left"), ("score", "left")):  # fmt: skip
        table.add_column(column, justify=justify, overflow="fold")
    for result in results:
        table.add_row(
            str(result["call"] or "—"), str(result["difficulty"]), str(result["seed"]),
            Text(_short(result["answer"])), Text(_short(result["witness"])), score_mark(result, "?"),
        )  # fmt: skip
    return table


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


def numbered_calls(story: dict[str, Any], role: str | None = None, step: str | None = None
                   ) -> list[tuple[int, dict[str, Any]]]:  # fmt: skip
    """The LLM calls, numbered in the order they started, of one role and one step if given."""
    step = STEP_ALIASES.get(step, step) if step else None
    return [
        (number, call)
        for number, call in enumerate(story["llm_calls"], 1)
        if (role is None or call["name"] == role) and (step is None or call["step"] == step)
    ]


def messages_view(story: dict[str, Any], calls: list[tuple[int, dict[str, Any]]], full: bool
                  ) -> list[RenderableType]:  # fmt: skip
    """Each call's messages and reply. A message already shown (the system prompt of every call
    after the first, the prompt of a retried call) is named by the call that showed it."""
    limit = None if full else _MESSAGE_CHARS
    shown: dict[tuple[str, str], int] = {}
    results = probe_results(story)
    probes = {result["call"]: result for result in results if result["call"]}
    views: list[RenderableType] = []
    for number, call in calls:
        data, probe = call["data"], probes.get(number)
        about = ""
        if probe:
            about = f" · probe {probe['index'] + 1}/{len(results)}: "
            about += f"difficulty {probe['difficulty']}, seed {probe['seed']}"
        tokens = (
            f"{data.get('input_tokens', 0) + data.get('output_tokens', 0):,} tokens "
            f"({data.get('input_tokens', 0):,} in, {data.get('output_tokens', 0):,} out)"
        )
        views.append(Rule(f"call {number} · {call['name']} · step {call['step']}{about}", align="left"))
        views.append(Text(f"{data['model']} · {call['seconds']:.2f} s · {tokens}", style="dim"))
        for message in data["messages"]:
            first = shown.setdefault((message["role"], message["content"]), number)
            if first != number:
                views.append(Text(f"{message['role']}: same as call {first}", style="dim cyan"))
            else:
                views.append(Text(f"{message['role']}:", style="bold cyan"))
                views.append(Text(_cut(message["content"], limit)))
        views.append(Text("reply:" if "reply" in data else "error:", style="bold green"))
        views.append(Text(_cut(data.get("reply") or data.get("error", ""), limit)))
        if probe:
            views.append(Text.assemble(
                f"answer {_short(probe['answer'], 60)} · witness {_short(probe['witness'], 60)} · ",
                score_mark(probe),
            ))  # fmt: skip
    return views


def _cut(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[:limit] + f"\n… ({len(text) - limit:,} more characters; --full shows them)"


def environment_trace(story: dict[str, Any], *, messages: bool, full: bool,
                      role: str | None = None, step: str | None = None) -> Group:  # fmt: skip
    """The whole story; with `role` or `step`, the verdict and those LLM calls only."""
    record = EnvironmentRecord.model_validate(story["environment"])
    roles: Counter[str] = Counter()
    for call in story["llm_calls"]:
        roles[call["name"]] += call["data"].get("input_tokens", 0) + call["data"].get("output_tokens", 0)
    kernel = story["kernel"]
    summary = Text(
        f"LLM calls {len(story['llm_calls'])} ("
        + ", ".join(f"{name} {tokens:,} tok" for name, tokens in roles.items())
        + f") · kernel executions {kernel['executions']} ({kernel['seconds']:.2f} s"
        + (f", side effects refused: {len(kernel['side_effects'])}" if kernel["side_effects"] else "")
        + ")",
        style="dim",
    )
    parts: list[RenderableType] = [environment_panel(record), summary]
    if role or step:
        return Group(*parts, *messages_view(story, numbered_calls(story, role, step), full))
    if story["steps"]:
        parts.append(timeline_table(story))
        results = probe_results(story)
        if results:
            parts.append(probe_table(results))
    else:
        parts.append(
            Text("no trace recorded for this environment (made before tracing existed?)", style="dim")
        )
    parts += attempts_view(story)
    if messages:
        parts += messages_view(story, numbered_calls(story), full)
    return Group(*parts)


def job_summary(job: JobRecord, counts: JobCounts, usage: JobUsage, events: list[dict[str, Any]],
                environments: list[EnvironmentRecord], last: int | None = None) -> Group:  # fmt: skip
    """The job's verdicts, why environments were rejected, its runs (each start or resume to its
    end) and its events, all of them or the `last` ones."""
    header = Text(
        f"job {job.name} · {job.state}"
        + (f" · {job.stop_reason}" if job.stop_reason else "")
        + f" · target {job.options['target']} · seeds: {', '.join(job.options['seed_topics'])}",
        style="bold",
    )
    totals = Table(title="verdicts", **_COMPACT)
    totals.add_column("status")
    totals.add_column("count", justify="right")
    for status, count in counts.present().items():
        totals.add_row(status_text(status), str(count))
    tokens = Text(  # the job's, its scout's included: the same total as `resyn jobs`
        f"{usage.total:,} tokens ({usage.input_tokens:,} in, {usage.output_tokens:,} out)", style="dim"
    )
    reasons = Counter(_reason_kind(record) for record in environments if record.status != Status.ACCEPTED)
    why = Table(title="why environments were rejected", **_COMPACT)
    why.add_column("reason", overflow="fold")
    why.add_column("count", justify="right")
    for reason, count in reasons.most_common(8):
        why.add_row(reason, str(count))
    table = Table(title="environments", **_COMPACT)
    table.add_column("id", no_wrap=True, min_width=12)
    for column in ("topic", "status", "reason"):
        table.add_column(column, overflow="fold")
    for record in environments:
        table.add_row(
            record.id, Text(record.topic), status_text(record.status), Text(_short(record.reason, 100))
        )
    runs = job_runs(events, job.state)
    return Group(
        header,
        totals,
        tokens,
        *([why] if reasons else []),
        table,
        *([runs_table(runs), *events_view(events, runs, last)] if runs else [Text("no job events recorded")]),
    )


def job_runs(events: list[dict[str, Any]], state: str) -> list[dict[str, Any]]:
    """The job's runs: each process that started or resumed it (a `job` event), from its first
    event to its last, and how it ended: its `stop` event's reason, still running, or interrupted
    (Ctrl-C or a kill leave no stop event), with the syntheses it left in flight."""
    runs: list[dict[str, Any]] = []
    in_flight: set[str] = set()
    for index, event in enumerate(events):
        if not runs or event["name"] == "job":
            in_flight = set()
            runs.append(
                {"number": len(runs) + 1, "first": index, "started": event["started"], "stopped": None}
            )
        run, environment_id = runs[-1], event["data"].get("environment_id")
        run.update(last=index, ended=event["started"])
        if event["name"] == "stop":
            run["stopped"] = event["data"].get("line", "")
        elif event["name"] == "start":
            in_flight.add(environment_id)
        elif "status" in event["data"]:
            in_flight.discard(environment_id)
        run["in_flight"] = len(in_flight)
    for run in runs:
        run["interrupted"] = run["stopped"] is None and (run["number"] < len(runs) or state != "running")
        if run["stopped"] is not None:
            run["end"] = f"stopped: {run['stopped']}" if run["stopped"] else "stopped"
        elif run["interrupted"]:
            run["end"] = "interrupted (Ctrl-C or killed): no stop recorded" + (
                f", {run['in_flight']} in flight" if run["in_flight"] else ""
            )
        else:
            run["end"] = "running"
    return runs


def runs_table(runs: list[dict[str, Any]]) -> Table:
    table = Table(title="runs (a start or resume each)", **_COMPACT)
    for column, justify in (("#", "right"), ("from", "left"), ("to", "left"), ("took", "right"),
                            ("how it ended", "left")):  # fmt: skip
        table.add_column(column, justify=justify, overflow="fold")
    for run in runs:
        table.add_row(
            str(run["number"]), f"{_date(run['started'])} {_clock(run['started'])}", _clock(run["ended"]),
            _duration(run["ended"] - run["started"]),
            Text(run["end"], style="magenta" if run["interrupted"] else ""),
        )  # fmt: skip
    return table


def events_view(events: list[dict[str, Any]], runs: list[dict[str, Any]], last: int | None
                ) -> list[RenderableType]:  # fmt: skip
    """Every event (or the `last` ones) at its local time, a table per day; each verdict with how
    long its synthesis took since it (re)started, and a line where a run was interrupted."""
    shown_from = 0 if last is None else max(0, len(events) - last)
    interrupted_after = {run["last"]: run for run in runs if run["interrupted"]}
    started: dict[str, float] = {}
    days: dict[str, Table] = {}
    for index, event in enumerate(events):
        data, environment_id = event["data"], event["data"].get("environment_id")
        line, took = data.get("line", ""), ""
        if event["name"] == "start" and environment_id:
            if environment_id in started:
                line += " (resumed from its checkpoint)"
            started[environment_id] = event["started"]
        elif "status" in data and environment_id in started:
            took = _duration(event["started"] - started[environment_id])
        elif event["name"] == "scout" and "seconds" in data:  # the scout's call
            took = _duration(data["seconds"])
        if index < shown_from:
            continue
        day = _date(event["started"])
        if day not in days:
            days[day] = _day_table(day)
        log = days[day]
        log.add_row(_clock(event["started"]), status_text(event["name"]), took, Text(line))
        if index in interrupted_after:
            log.add_row("", Text("interrupted", style="magenta"), "",
                        Text(interrupted_after[index]["end"], style="magenta"))  # fmt: skip
    shown = len(events) - shown_from
    heading = f"events: the last {shown} of {len(events)} (without --last, all)" if shown_from else "events"
    return [Text(heading, style="bold"), *days.values()]


def _day_table(day: str) -> Table:
    """One day's events; fixed widths keep the columns of consecutive days aligned."""
    table = Table(title=day, show_header=False, box=None, pad_edge=False, title_justify="left")
    table.add_column("at", width=8, no_wrap=True)
    table.add_column("event", width=11, overflow="fold")
    table.add_column("took", width=7, justify="right", no_wrap=True)
    table.add_column("what", overflow="fold")
    return table


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def _date(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(timestamp))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _reason_kind(record: EnvironmentRecord) -> str:
    """A rejection grouped by its kind: the status and, for invalid ones, the first failed check."""
    if record.status == Status.INVALID and ": " in record.reason:
        return f"invalid: {record.reason.split(': ', 2)[1].split(':')[0]}"
    return record.status
