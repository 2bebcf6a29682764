"""`resyn sample FILE`: an environment's instances, generated in the sandbox."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from resyn.commands.preamble import read_sources
from resyn.console import console, print_error
from resyn.contract import DIFFICULTIES


def sample(
    path: Annotated[Path, typer.Argument(help="environment source file")],
    difficulty: Annotated[int, typer.Option(min=DIFFICULTIES[0], max=DIFFICULTIES[-1])] = 1,
    count: Annotated[int, typer.Option(min=1, max=1000)] = 3,
    seed: Annotated[int, typer.Option(min=0, help="first seed; the next ones follow")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON array")] = False,
) -> None:
    """Generate instances of an environment (in the sandbox) and print them."""
    from resyn.settings import Settings
    from resyn.tools.sampler import SampleError, sample_instances

    [source] = read_sources([path])
    try:
        instances = asyncio.run(sample_instances(source, difficulty, range(seed, seed + count), Settings()))
    except SampleError as error:
        print_error(f"{path}: {error}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps([instance.model_dump() for instance in instances], ensure_ascii=False))
        return
    from resyn.views import instance_panel

    for instance in instances:
        console.print(instance_panel(instance))
