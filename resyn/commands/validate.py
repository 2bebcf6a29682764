"""`resyn validate FILE…`: every check of the environment contract, on each file, in the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Annotated

import typer

from resyn.commands.preamble import read_sources
from resyn.console import console


def validate(
    paths: Annotated[list[Path], typer.Argument(help="environment source files")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON array")] = False,
    seeds: Annotated[
        int | None,
        typer.Option(
            min=2, help="seeds sampled per difficulty (default: RESYN_VALIDATOR_SEEDS_PER_DIFFICULTY, 8)"
        ),
    ] = None,
) -> None:
    """Run every check of the environment contract on each file, in sandboxed kernels."""
    from resyn.settings import Settings
    from resyn.tools.validator import validate_sources

    sources = read_sources(paths)
    settings = Settings()
    with console.status("validating…") if not as_json else contextlib.nullcontext():
        reports = asyncio.run(validate_sources(sources, settings, seeds))
    if as_json:
        rows = [
            {
                "path": str(path),
                "name": report.name,
                "valid": report.valid,
                "checks": [
                    {"name": c.name, "passed": c.passed, "skipped": c.skipped, "detail": c.detail}
                    for c in report.checks
                ],
                "seconds": report.seconds,
            }
            for path, report in zip(paths, reports, strict=True)
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False))
    else:
        from resyn.views import validation_table

        console.print(validation_table(paths, reports, console.width))
    raise typer.Exit(0 if all(report.valid for report in reports) else 1)
