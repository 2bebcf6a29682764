"""`resyn doctor`: check every file of the workspace and say what is wrong and what to do."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer

from resyn.console import console, fail_usage

_STYLES = {"ok": "green", "warning": "yellow", "damaged": "red"}


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="print the findings as JSON")] = False,
) -> None:
    """Check the workspace, one line per file: the library and checkpoints (integrity), the topic
    graph, the novelty cache, the accepted sources against the library, the folder and the disk.
    Only reads. Exits 1 when anything is damaged."""
    from resyn.memory.health import examine
    from resyn.settings import Settings

    settings = Settings()
    data_dir = settings.data_dir
    if settings.database_url is not None:
        raise fail_usage(
            "resyn doctor checks a workspace's SQLite files, and this library is on PostgreSQL"
            " (RESYN_DATABASE_URL): check it with the server's own tools (pg_amcheck, pg_dump)"
        )
    if not data_dir.is_dir():
        raise fail_usage(f"no workspace in {data_dir}: set RESYN_DATA_DIR to the workspace")
    findings = examine(data_dir)
    healthy = all(finding.status != "damaged" for finding in findings)
    if as_json:
        rows = [dataclasses.asdict(finding) for finding in findings]
        typer.echo(json.dumps({"workspace": str(data_dir), "healthy": healthy, "findings": rows}))
    else:
        width = max(len(finding.file) for finding in findings)
        for finding in findings:
            status = f"[{_STYLES[finding.status]}]{finding.status:<8}[/]"
            console.print(
                f"{status} {finding.file:<{width}}  {finding.detail}", highlight=False, soft_wrap=True
            )
    raise typer.Exit(0 if healthy else 1)
