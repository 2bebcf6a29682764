"""The trace store: every step, LLM call and kernel execution of every environment.

Events go into `trace_events` in the library's database (its table is one of the library's
schema, memory/migrations) as they happen, one commit each, so a crash loses at most the step in
flight. `environment_story` assembles what a person (or the web viewer) wants to see about one
environment: its record, attempts with the diff between consecutive drafts, the timeline, the
probe. Opened read-only, it writes nothing: a library with no traces yet reads as one with no
events (the library's opening gives it the table).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from resyn.memory import schema
from resyn.memory.database import Row
from resyn.memory.library import Library
from resyn.memory.workspace import Workspace
from resyn.settings import Settings
from resyn.tracing import TraceEvent


class TraceStore:
    """`TraceStore(data_dir)` or `TraceStore.of(settings)`: the library's trace events;
    `read_only=True` for readers."""

    def __init__(self, data_dir: Path, *, read_only: bool = False, database_url: str | None = None) -> None:
        if read_only:  # an older library is upgraded once by Library, or refused in one line
            Library(data_dir, read_only=True, database_url=database_url).close()
        # synchronous=NORMAL: an event survives a killed process, and needs no fsync of its own
        self._db = Workspace(data_dir, database_url).open_library(read_only=read_only, synchronous="NORMAL")
        if not self._db.read_only:  # a writable library, or the empty stand-in of a new workspace
            schema.upgrade(self._db)

    @classmethod
    def of(cls, settings: Settings, *, read_only: bool = False) -> TraceStore:
        return cls(settings.data_dir, read_only=read_only, database_url=settings.database_url_value)

    def close(self) -> None:
        self._db.close()

    def add(self, event: TraceEvent) -> None:
        self._db.execute(
            "INSERT INTO trace_events (environment_id, job, kind, name, step, span, started, seconds, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.environment_id,
                event.job,
                event.kind,
                event.name,
                event.step,
                event.span,
                event.started,
                event.seconds,
                json.dumps(event.data, ensure_ascii=False, default=str),
            ),
        )

    def events(self, environment_id: str) -> list[dict[str, Any]]:
        """One environment's events in the order they started."""
        rows = self._db.execute(
            "SELECT * FROM trace_events WHERE environment_id = ? ORDER BY started, seq", (environment_id,)
        )
        return [_event(row) for row in rows]

    def job_events(self, job: str) -> list[dict[str, Any]]:
        """A job's own events (start, scout, rounds, verdicts, stop), not its environments' details."""
        rows = self._db.execute(
            "SELECT * FROM trace_events WHERE job = ? AND kind = 'job' ORDER BY started, seq", (job,)
        )
        return [_event(row) for row in rows]


def _event(row: Row) -> dict[str, Any]:
    values = dict(row)
    values["data"] = json.loads(values["data"])
    return values


def source_diff(before: str | None, after: str | None, label: str) -> str:
    """A unified diff between two versions of an environment ('' when either is missing)."""
    if not before or not after:
        return ""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), "previous", label, n=2
    )
    return "".join(lines)


def environment_story(library: Library, traces: TraceStore, environment_id: str) -> dict[str, Any]:
    """Everything known about one environment, as JSON data (raises UnknownEnvironment)."""
    record = library.get(environment_id)
    attempts, previous = [], None
    for attempt in library.attempts(record.id):
        entry = attempt.model_dump(mode="json")
        entry["diff"] = source_diff(previous, attempt.source, f"attempt {attempt.number}")
        attempts.append(entry)
        previous = attempt.source or previous
    events = traces.events(record.id)
    started = events[0]["started"] if events else record.created
    for event in events:
        event["offset"] = round(event["started"] - started, 3)
    llm_calls = [event for event in events if event["kind"] == "llm_call"]
    probe = next((e["data"] for e in events if e["kind"] == "step" and e["name"] == "sample_probe"), {})
    return {
        "environment": record.model_dump(mode="json"),
        "attempts": attempts,
        "events": events,
        "steps": [event for event in events if event["kind"] == "step"],
        "llm_calls": llm_calls,
        "kernel": _kernel_summary([event for event in events if event["kind"] == "kernel"]),
        "tokens": {
            "input": sum(e["data"].get("input_tokens", 0) for e in llm_calls),
            "output": sum(e["data"].get("output_tokens", 0) for e in llm_calls),
        },
        "probe": {"pass_rates": record.pass_rates, "instances": probe.get("instances", [])},
    }


def _kernel_summary(events: list[dict[str, Any]]) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for event in events:
        statuses[event["data"].get("status", "?")] = statuses.get(event["data"].get("status", "?"), 0) + 1
    return {
        "executions": len(events),
        "seconds": round(sum(event["seconds"] for event in events), 3),
        "statuses": statuses,
        "side_effects": [effect for event in events for effect in event["data"].get("events", [])],
    }
