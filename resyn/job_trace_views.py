"""Rich renderings of a job's trace: its verdicts, rejection reasons, runs and events in time."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from resyn.contract import Status
from resyn.memory.records import EnvironmentRecord, JobCounts, JobRecord, JobUsage
from resyn.trace_views import COMPACT_TABLE, one_line
from resyn.views import status_text


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
    totals = Table(title="verdicts", **COMPACT_TABLE)
    totals.add_column("status")
    totals.add_column("count", justify="right")
    for status, count in counts.present().items():
        totals.add_row(status_text(status), str(count))
    tokens = Text(  # the job's, its scout's included: the same total as `resyn jobs`
        f"{usage.total:,} tokens ({usage.input_tokens:,} in, {usage.output_tokens:,} out)", style="dim"
    )
    reasons = Counter(_reason_kind(record) for record in environments if record.status != Status.ACCEPTED)
    why = Table(title="why environments were rejected", **COMPACT_TABLE)
    why.add_column("reason", overflow="fold")
    why.add_column("count", justify="right")
    for reason, count in reasons.most_common(8):
        why.add_row(reason, str(count))
    table = Table(title="environments", **COMPACT_TABLE)
    table.add_column("id", no_wrap=True, min_width=12)
    for column in ("topic", "status", "reason"):
        table.add_column(column, overflow="fold")
    for record in environments:
        table.add_row(
            record.id, Text(record.topic), status_text(record.status), Text(one_line(record.reason, 100))
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
    table = Table(title="runs (a start or resume each)", **COMPACT_TABLE)
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
