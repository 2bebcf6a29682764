"""`resyn library list|show`: what the workspace's library holds."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from resyn.console import console, fail_usage, print_note
from resyn.contract import Status

if TYPE_CHECKING:
    from resyn.memory.records import EnvironmentRecord

library_app = typer.Typer(help="Browse the environment library.", no_args_is_help=True)


class Sort(StrEnum):
    """`library list --sort`: times and tokens newest (largest) first, topic and status A to Z."""

    CREATED = "created"
    UPDATED = "updated"
    TOPIC = "topic"
    STATUS = "status"
    TOKENS = "tokens"


def sort_key(sort: Sort) -> Callable[[EnvironmentRecord], Any]:
    if sort is Sort.TOPIC:
        return lambda record: (record.topic.casefold(), -record.created)
    if sort is Sort.STATUS:
        return lambda record: (record.status, -record.created)
    if sort is Sort.TOKENS:
        return lambda record: (-(record.input_tokens + record.output_tokens), -record.created)
    return lambda record: -getattr(record, sort.value)


@library_app.command("list")
def list_environments(
    status: Annotated[
        str | None, typer.Option(metavar="STATUS", help=f"only this status: {', '.join(Status)}")
    ] = None,
    job: Annotated[str | None, typer.Option(metavar="NAME", help="only this job's environments")] = None,
    topic: Annotated[
        str | None, typer.Option(metavar="TEXT", help="only topics containing this (any case)")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(metavar="TEXT", help="only reasons containing this (any case)")
    ] = None,
    sort: Annotated[Sort, typer.Option(help="order: times and tokens newest first")] = Sort.CREATED,
    limit: Annotated[int | None, typer.Option(min=1, help="show at most N (default: all)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON array, every field")] = False,
) -> None:
    """The library's environments, newest first: filter, sort and limit them."""
    from resyn.memory.library import Library
    from resyn.settings import Settings
    from resyn.views import library_table

    if status is not None and status not in tuple(Status):  # `in Status` itself needs Python 3.12
        raise fail_usage(f"unknown status {status!r}: choose from {', '.join(Status)}")
    library = Library.of(Settings(), read_only=True)
    if job is not None and library.job(job) is None:
        raise fail_usage(f"no job {job!r} in {library.data_dir}: `resyn jobs` lists them")
    every = library.environments()
    matched = sorted(
        (record for record in every if matches(record, status, job, topic, reason)), key=sort_key(sort)
    )
    shown = matched[:limit]
    left_out = len(matched) - len(shown)
    if as_json:
        typer.echo(json.dumps([record.model_dump(mode="json", exclude={"source"}) for record in shown]))
        if left_out:
            print_note(f"{left_out} more not shown: raise --limit to see them")
        return
    counted = f"{len(matched)} of {len(every)}" if len(matched) < len(every) else f"{len(every)}"
    title = f"library: {counted} environments"
    caption = f"{left_out} more not shown: use --limit {len(matched)} to see all" if left_out else ""
    console.print(library_table(shown, title, console.width, caption))


def matches(
    record: EnvironmentRecord, status: str | None, job: str | None, topic: str | None, reason: str | None
) -> bool:
    """Whether the record passes every filter given: status and job exactly, topic and reason as
    substrings in any case (as the viewer's /environments filters them)."""
    return (
        (status is None or record.status == status)
        and (job is None or record.job == job)
        and (topic is None or topic.casefold() in record.topic.casefold())
        and (reason is None or reason.casefold() in record.reason.casefold())
    )


@library_app.command("show")
def show(
    environment_id: Annotated[str, typer.Argument(help="an environment id (a unique prefix will do)")],
    as_json: Annotated[
        bool, typer.Option("--json", help="print the record and its attempts as JSON")
    ] = False,
) -> None:
    """One environment: verdict, reason, checks, pass rates, attempts, file."""
    from resyn.commands.workspace import environment_by_id
    from resyn.memory.library import Library
    from resyn.settings import Settings
    from resyn.views import attempts_table, environment_panel

    library = Library.of(Settings(), read_only=True)
    record = environment_by_id(library, environment_id)
    attempts = library.attempts(record.id)
    if as_json:
        payload = record.model_dump(mode="json")
        payload["attempts"] = [attempt.model_dump(mode="json") for attempt in attempts]
        typer.echo(json.dumps(payload, ensure_ascii=False))
        return
    console.print(environment_panel(record))
    console.print(attempts_table(attempts))
    if record.path:  # one line, however long, to copy (as `resyn synthesize` ends)
        console.print(f"environment {record.id} · file {record.path}", soft_wrap=True, highlight=False)
