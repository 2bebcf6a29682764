"""`resyn sample FILE|ID`: an environment's instances, generated in the sandbox."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from resyn.commands.preamble import read_sources
from resyn.console import console, fail_usage, print_error
from resyn.contract import DIFFICULTIES

if TYPE_CHECKING:
    from resyn.settings import Settings


def sample(
    environment: Annotated[
        str,
        typer.Argument(
            metavar="FILE|ID", help="an environment source file, or a library id (a unique prefix will do)"
        ),
    ],
    difficulty: Annotated[int, typer.Option(min=DIFFICULTIES[0], max=DIFFICULTIES[-1])] = 1,
    count: Annotated[int, typer.Option(min=1, max=1000, help="instances to generate")] = 3,
    seed: Annotated[int, typer.Option(min=0, help="first seed; the next ones follow")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON array")] = False,
) -> None:
    """Generate instances of an environment (in the sandbox) and print them."""
    from resyn.settings import Settings
    from resyn.tools.sampler import SampleError, sample_instances

    settings = Settings()
    source = environment_source(environment, settings)
    try:
        instances = asyncio.run(sample_instances(source, difficulty, range(seed, seed + count), settings))
    except SampleError as error:
        print_error(f"{environment}: {error}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps([instance.model_dump() for instance in instances], ensure_ascii=False))
        return
    from resyn.views import instance_panel

    for instance in instances:
        console.print(instance_panel(instance))


def environment_source(environment: str, settings: Settings) -> str:
    """The source of the file `environment` names, else of the library's environment with that id
    (or id prefix); a one-line usage error when it is neither."""
    from resyn.commands.workspace import environment_by_id
    from resyn.memory.library import Library

    path = Path(environment)
    if path.exists() or path.suffix == ".py" or len(path.parts) > 1:  # a path, not an id
        [source] = read_sources([path])
        return source
    library = Library.of(settings, read_only=True)
    try:
        record = environment_by_id(library, environment, unknown_hint=", nor such a file")
    finally:
        library.close()
    if not record.source:
        raise fail_usage(f"environment {record.id} has no source yet (status {record.status})")
    return record.source
