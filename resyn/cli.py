"""The `resyn` command line: the commands live in resyn.commands, one module each; this registers
them. Heavy modules are imported inside commands, so `--help` stays fast.

`main` is the entry point: a damaged workspace (see resyn.memory.damage) ends any command with
one line on stderr and exit code 1, never a traceback."""

from __future__ import annotations

import sys
import typing

import typer
from typer.core import TyperGroup, TyperOption

from resyn.commands.doctor import doctor
from resyn.commands.evaluate import eval_app
from resyn.commands.expand import expand, jobs
from resyn.commands.export import export
from resyn.commands.importing import import_app
from resyn.commands.library import library_app
from resyn.commands.mcp import mcp
from resyn.commands.report import report
from resyn.commands.sample import sample
from resyn.commands.synthesize import synthesize
from resyn.commands.trace import trace
from resyn.commands.ui import ui
from resyn.commands.validate import validate
from resyn.console import USAGE_ERROR, print_error


class PlainHelpGroup(TyperGroup):
    """The root command: before parsing, it gives every option of every command a plain metavar,
    so help reads `--count N [1<=x<=1000]` and `--json`, not `<int range>` and `<bool>`."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        plain_metavars(self, ctx)
        return super().parse_args(ctx, args)


def plain_metavars(command: typer.core.TyperCommand | TyperGroup, ctx: typer.Context) -> None:
    """Flags get none; N for an int, NUMBER, PATH, TEXT, [a|b] for the others; a metavar a command
    sets stays. A range that N already says (x>=0, x>=1) is not repeated."""
    for param in [*command.params, command.get_help_option(ctx)]:
        if not isinstance(param, TyperOption):
            continue
        if param.metavar is None:
            param.metavar = "" if param.is_flag or param.count else _metavar(param)
        if param.type_descriptor.annotation is int and param.max is None and param.min in (0, 1):
            param.min = None  # only the help shows this; the option's type still checks the value
    for subcommand in getattr(command, "commands", {}).values():
        plain_metavars(subcommand, ctx)


def _metavar(option: TyperOption) -> str:
    described = option.type_descriptor
    if described.is_choice:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in described.choices or ()) + "]"
    if described.is_path:
        return "PATH"
    annotation = described.annotation
    if described.is_list:
        [annotation] = typing.get_args(annotation)
    plain = {int: "N", float: "NUMBER", str: "TEXT"}
    return plain.get(annotation) or getattr(annotation, "__name__", "value").upper()


app = typer.Typer(
    cls=PlainHelpGroup,
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
app.command()(validate)
app.command()(sample)
app.add_typer(import_app, name="import")


def main() -> None:
    try:
        app()
    except Exception as error:
        from resyn.memory.damage import damage_in
        from resyn.settings import Settings
        from resyn.tools.os_sandbox import SandboxUnavailable

        if isinstance(error, SandboxUnavailable):  # no code runs unconfined unless asked to
            print_error(str(error))
            sys.exit(USAGE_ERROR)

        damage = damage_in(error, Settings().data_dir)
        if damage is None:
            raise
        print_error(str(damage))
        sys.exit(1)
