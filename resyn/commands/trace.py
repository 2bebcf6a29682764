"""`resyn trace ENV_ID` and `resyn trace --job JOB`: the story of an environment or a job."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from resyn.console import console, fail_usage


def trace(
    environment_id: Annotated[
        str | None, typer.Argument(help="an environment id (a unique prefix will do)")
    ] = None,
    job: Annotated[str | None, typer.Option(help="summarise a job instead")] = None,
    messages: Annotated[bool, typer.Option("--messages", help="show every LLM call's messages")] = False,
    full: Annotated[bool, typer.Option("--full", help="do not shorten long messages")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole trace as JSON")] = False,
) -> None:
    """Why was it rejected, what did each repair change, where did the tokens go."""
    from resyn.memory.library import AmbiguousEnvironment, Library, UnknownEnvironment
    from resyn.memory.traces import TraceStore, environment_story
    from resyn.settings import Settings
    from resyn.trace_views import environment_trace, job_summary

    if (environment_id is None) == (job is None):
        raise fail_usage("give an environment id, or --job JOB")
    data_dir = Settings().data_dir
    library, traces = Library(data_dir, read_only=True), TraceStore(data_dir, read_only=True)
    try:
        if job is not None:
            record = library.job(job)
            if record is None:
                raise fail_usage(f"no job {job!r} in {data_dir}")
            counts = library.job_counts(job)
            events = traces.job_events(job)
            environments = [env for env in library.environments() if env.job == job]
            if as_json:
                payload = {
                    "job": record.model_dump(mode="json"),
                    "counts": counts.as_dict(),
                    "events": events,
                    "environments": [env.model_dump(mode="json", exclude={"source"}) for env in environments],
                }
                typer.echo(json.dumps(payload, ensure_ascii=False))
            else:
                console.print(job_summary(record, counts, events, environments))
            return
        try:
            story = environment_story(library, traces, environment_id)
        except AmbiguousEnvironment as ambiguous:
            raise fail_usage(f"{ambiguous}: give more of the id") from None
        except UnknownEnvironment:
            raise fail_usage(f"no environment {environment_id!r} in {data_dir}") from None
        if as_json:
            typer.echo(json.dumps(story, ensure_ascii=False))
        else:
            console.print(environment_trace(story, messages=messages, full=full))
    finally:
        traces.close()
        library.close()
