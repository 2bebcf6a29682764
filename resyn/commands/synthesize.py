"""`resyn synthesize "TOPIC"`: one topic to one verdict, with live progress."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from resyn.commands.preamble import checked_models, interruptible, note_embedded, read_sources
from resyn.console import ENDPOINT_DOWN, console, fail_usage, print_error, print_note


def synthesize(
    topic: Annotated[str | None, typer.Argument(help="what the environment should be about")] = None,
    max_repairs: Annotated[int | None, typer.Option(min=0, help="repairs after the first draft")] = None,
    no_probe: Annotated[bool, typer.Option("--no-probe", help="skip the solver probe")] = False,
    resume: Annotated[str | None, typer.Option(help="resume an interrupted synthesis by its id")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the library record as JSON")] = False,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="an environment file to judge instead of a draft (its TOPIC unless TOPIC is given):"
            " validated, probed, stored, never repaired",
        ),
    ] = None,
) -> None:
    """Draft an environment for TOPIC, validate and repair it, probe it with the solver, store the verdict."""
    from resyn.agents.exemplars import ExemplarsMissing, source_constants
    from resyn.agents.resilience import EndpointDown
    from resyn.contract import Status
    from resyn.embedded import EmbeddedModelMissing
    from resyn.graph.runtime import open_runtime
    from resyn.graph.synthesis import NothingToResume
    from resyn.graph.synthesis import synthesize as run_synthesis
    from resyn.settings import Settings
    from resyn.views import environment_panel, progress_line

    if resume is not None and (topic is not None or file is not None):
        raise fail_usage("--resume ID continues a synthesis as it was: give no topic or --file with it")
    if topic is None and resume is None and file is None:
        raise fail_usage(
            'give a topic, --file FILE or --resume ID (e.g. resyn synthesize "dependency sorting")'
        )
    if file is not None and max_repairs is not None:
        raise fail_usage("--max-repairs is for an author's drafts: a --file is judged as it is")
    source = read_sources([file])[0] if file is not None else None
    if source is not None and topic is None:
        topic = source_constants(source).get("TOPIC")
        if not topic:  # a file that does not parse has no constants either
            raise fail_usage(
                f"{file} defines no TOPIC string (or is not Python): give the topic as the argument"
            )
    if topic is not None and not topic.strip():
        raise fail_usage("the topic is empty")
    settings = Settings()
    environment_id = resume or uuid.uuid4().hex[:12]
    roles = () if source is not None else ("author",)
    roles += () if no_probe else ("solver",)
    checked_models(settings, roles)

    def on_update(node: str, update: dict[str, Any]) -> None:
        if not as_json:
            console.print(progress_line(node, update))

    async def run() -> Any:
        async with open_runtime(settings) as runtime:
            runtime.watch_endpoints(lambda _event, line: print_note(line))
            note_embedded(runtime.models, roles)
            if not as_json:
                names = [f"{role}: {runtime.model_name(role)}" for role in roles]
                names = [f"file: {file}", *names] if file is not None else names
                console.print(
                    f"[bold]synthesis {environment_id}[/bold] · {' · '.join(names)}", highlight=False
                )
            return await run_synthesis(
                runtime,
                topic,
                environment_id=environment_id,
                probe=not no_probe,
                max_repairs=max_repairs,
                on_update=on_update,
                source=source,
            )

    next_step = f"resume with: resyn synthesize --resume {environment_id}"
    try:
        with interruptible(next_step):
            record = asyncio.run(run())
    except EndpointDown as error:
        print_error(f"{error}; {next_step}")
        raise typer.Exit(ENDPOINT_DOWN) from None
    except NothingToResume as error:
        raise fail_usage(str(error).strip("'\"")) from None
    except (EmbeddedModelMissing, ExemplarsMissing) as error:
        print_error(str(error))
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(record.model_dump(mode="json"), ensure_ascii=False))
    else:
        console.print(environment_panel(record))
        where = f" · file {record.path}" if record.path else ""
        console.print(f"environment {record.id}{where}", soft_wrap=True, highlight=False)
    raise typer.Exit(0 if record.status == Status.ACCEPTED else 1)
