"""`resyn import reasoning-gym TASK`: a third-party task written out as a contract file, to validate,
sample and probe like any other (docs/third_party.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from resyn.console import console, fail_usage

import_app = typer.Typer(help="Bring third-party environments in as contract files.", no_args_is_help=True)


@import_app.command("reasoning-gym")
def reasoning_gym_task(
    task: Annotated[str, typer.Argument(help="a reasoning-gym task, e.g. basic_arithmetic")],
    out: Annotated[Path | None, typer.Option(help="the file to write (default: TASK.py here)")] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite the file if it exists")] = False,
) -> None:
    """Wrap a reasoning-gym task as an environment file: its curriculum gives the five difficulties,
    its score_answer is the verifier. Needs the reasoning-gym extra of resyn."""
    from resyn.tools.reasoning_gym_import import (
        ALLOWED_IMPORTS,
        ReasoningGymMissing,
        TaskNotWrappable,
        environment_name,
        render_environment,
    )

    try:
        source = render_environment(task)
    except (ReasoningGymMissing, TaskNotWrappable) as error:
        raise fail_usage(escape(str(error))) from None  # the install hint's [reasoning-gym] is no markup
    path = out or Path(f"{task}.py")
    if path.exists() and not force:
        raise fail_usage(escape(f"{path} exists: pass --force to overwrite it"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    except OSError as error:
        raise fail_usage(escape(f"cannot write {path}: {error.strerror or error}")) from None
    allowed = json.dumps(ALLOWED_IMPORTS)
    console.print(
        f"wrote {path} ({environment_name(task)}); validate it with: "
        f"RESYN_VALIDATOR_ALLOWED_IMPORTS='{allowed}' resyn validate {path}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
