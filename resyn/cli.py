"""The `resyn` command line: the commands live in resyn.commands, one module each; this registers
them. Heavy modules are imported inside commands, so `--help` stays fast.

`main` is the entry point: a damaged workspace (see resyn.memory.damage) ends any command with
one line on stderr and exit code 1, never a traceback."""

from __future__ import annotations

import sys

import typer

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
