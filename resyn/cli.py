"""The `resyn` command line. Heavy modules are imported inside commands, so `--help` stays fast.

`main` is the entry point: a damaged workspace (see resyn.memory.workspace) ends any command with
one line on stderr and exit code 1, never a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from resyn.commands.doctor import doctor
from resyn.commands.evaluate import eval_app
from resyn.commands.expand import expand, jobs
from resyn.commands.export import export
from resyn.commands.library import library_app
from resyn.commands.mcp import mcp
from resyn.commands.report import report
from resyn.commands.synthesize import synthesize
from resyn.commands.trace import trace
from resyn.commands.ui import ui
from resyn.console import console, fail_usage, print_error
from resyn.contract import DIFFICULTIES

app = typer.Typer(
    help="resyn: synthesize, verify and export reasoning environments for RL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(synthesize)
app.command()(expand)
app.command()(jobs)
app.command()(trace)
app.command()(mcp)
app.command()(ui)
app.add_typer(library_app, name="library")
app.command()(export)
app.command()(report)
app.add_typer(eval_app, name="eval")
app.command()(doctor)


def read_sources(paths: list[Path]) -> list[str]:
    """Every file's text, or a one-line usage error naming the first that cannot be read."""
    sources = []
    for path in paths:
        try:
            sources.append(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise fail_usage(f"no such file: {path}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise fail_usage(f"cannot read {path}: {error}") from None
    return sources


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="environment source files")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON array")] = False,
    seeds: Annotated[int | None, typer.Option(min=2, help="seeds sampled per difficulty")] = None,
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
                "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in report.checks],
                "seconds": report.seconds,
            }
            for path, report in zip(paths, reports, strict=True)
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False))
    else:
        from resyn.views import validation_table

        console.print(validation_table(paths, reports))
    raise typer.Exit(0 if all(report.valid for report in reports) else 1)


@app.command()
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


def main() -> None:
    try:
        app()
    except Exception as error:
        from resyn.memory.workspace import damage_in
        from resyn.settings import Settings

        damage = damage_in(error, Settings().data_dir)
        if damage is None:
            raise
        print_error(str(damage))
        sys.exit(1)
