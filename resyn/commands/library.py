"""`resyn library list|show`: what the workspace's library holds."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from resyn.console import console, fail_usage

library_app = typer.Typer(help="Browse the environment library.", no_args_is_help=True)


@library_app.command("list")
def list_environments(
    status: Annotated[str | None, typer.Option(help="only environments with this status")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON array")] = False,
) -> None:
    """Every environment in the library, oldest first."""
    from resyn.contract import Status
    from resyn.memory.library import Library
    from resyn.settings import Settings
    from resyn.views import library_table

    if status is not None and status not in tuple(Status):  # `in Status` itself needs Python 3.12
        raise fail_usage(f"unknown status {status!r}: choose from {', '.join(Status)}")
    library = Library(Settings().data_dir, read_only=True)
    records = library.environments(status)
    if as_json:
        typer.echo(json.dumps([record.model_dump(mode="json", exclude={"source"}) for record in records]))
    else:
        console.print(library_table(records))


@library_app.command("show")
def show(
    environment_id: Annotated[str, typer.Argument(help="an environment id (a unique prefix will do)")],
    as_json: Annotated[
        bool, typer.Option("--json", help="print the record and its attempts as JSON")
    ] = False,
) -> None:
    """One environment: verdict, reason, checks, pass rates, attempts, file."""
    from resyn.memory.library import AmbiguousEnvironment, Library, UnknownEnvironment
    from resyn.settings import Settings
    from resyn.views import attempts_table, environment_panel

    library = Library(Settings().data_dir, read_only=True)
    try:
        record = library.get(environment_id)
    except AmbiguousEnvironment as ambiguous:
        raise fail_usage(f"{ambiguous}: give more of the id") from None
    except UnknownEnvironment:
        raise fail_usage(f"no environment {environment_id!r} in {library.data_dir}") from None
    attempts = library.attempts(record.id)
    if as_json:
        payload = record.model_dump(mode="json")
        payload["attempts"] = [attempt.model_dump(mode="json") for attempt in attempts]
        typer.echo(json.dumps(payload, ensure_ascii=False))
        return
    console.print(environment_panel(record))
    console.print(attempts_table(attempts))
