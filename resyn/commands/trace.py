"""`resyn trace ENV_ID` and `resyn trace --job JOB`: the story of an environment or a job."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from resyn.console import console, fail_usage


def trace(
    environment_id: Annotated[
        str | None, typer.Argument(help="an environment id (a unique prefix will do)")
    ] = None,
    job: Annotated[str | None, typer.Option(help="summarise a job instead")] = None,
    messages: Annotated[bool, typer.Option("--messages", help="show every LLM call's messages")] = False,
    role: Annotated[
        str | None, typer.Option(help="only the LLM calls of this role: author, solver or scout")
    ] = None,
    step: Annotated[
        str | None, typer.Option(help="only the LLM calls of this step: draft, repair, solve (or probe)")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="do not shorten long messages")] = False,
    last: Annotated[
        int | None, typer.Option(min=1, help="with --job: only the last N events (default: all)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole trace as JSON")] = False,
) -> None:
    """Why was it rejected, what did each repair change, where did the tokens go."""
    from resyn.job_trace_views import job_runs, job_summary
    from resyn.memory.library import AmbiguousEnvironment, Library, UnknownEnvironment
    from resyn.memory.traces import TraceStore, environment_story
    from resyn.settings import Settings
    from resyn.trace_views import ROLES, environment_trace, numbered_calls, probe_results

    if (environment_id is None) == (job is None):
        raise fail_usage("give an environment id, or --job JOB")
    if job is not None and (messages or role or step):
        raise fail_usage("--messages, --role and --step are for one environment, not --job")
    if job is None and last is not None:
        raise fail_usage("--last is for --job JOB")
    if role is not None and role not in ROLES:
        raise fail_usage(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    settings = Settings()
    data_dir = settings.data_dir
    library, traces = Library.of(settings, read_only=True), TraceStore.of(settings, read_only=True)
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
                    "usage": library.job_usage(job).as_dict(),
                    "runs": job_runs(events, record.state),
                    "events": events[-last:] if last else events,
                    "environments": [env.model_dump(mode="json", exclude={"source"}) for env in environments],
                }
                typer.echo(json.dumps(payload, ensure_ascii=False))
            else:
                console.print(job_summary(record, counts, library.job_usage(job), events, environments, last))
            return
        try:
            story = environment_story(library, traces, environment_id)
        except AmbiguousEnvironment as ambiguous:
            raise fail_usage(f"{ambiguous}: give more of the id") from None
        except UnknownEnvironment:
            raise fail_usage(f"no environment {environment_id!r} in {data_dir}") from None
        if (role or step) and not numbered_calls(story, role, step):
            wanted = " and ".join(
                f"{name} {value!r}" for name, value in (("role", role), ("step", step)) if value
            )
            raise fail_usage(f"no LLM calls with {wanted} in this trace; it has: {_calls_by_role(story)}")
        if as_json:
            story["probe"]["results"] = probe_results(story)
            if role or step:
                story["llm_calls"] = [call for _, call in numbered_calls(story, role, step)]
            typer.echo(json.dumps(story, ensure_ascii=False))
        else:
            console.print(environment_trace(story, messages=messages, full=full, role=role, step=step))
    finally:
        traces.close()
        library.close()


def _calls_by_role(story: dict[str, Any]) -> str:
    """Which roles made calls in which steps, e.g. "author (draft, repair), solver (solve)"."""
    steps: dict[str, dict[str, None]] = {}
    for call in story["llm_calls"]:
        steps.setdefault(call["name"], {})[str(call["step"])] = None
    return ", ".join(f"{role} ({', '.join(names)})" for role, names in steps.items()) or "no LLM calls"
