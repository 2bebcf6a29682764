"""`resyn expand` (the long job) and `resyn jobs` (what jobs this workspace has)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from resyn.commands.preamble import checked_models, interruptible, note_embedded
from resyn.console import ENDPOINT_DOWN, console, fail_usage, print_error

if TYPE_CHECKING:
    from resyn.memory.library import Library
    from resyn.settings import PriceSettings, Settings

_ROLES = ("author", "solver", "scout")


def expand(
    seed_topics: Annotated[
        str | None,
        typer.Option(help='comma-separated topics to start from: "logic puzzles, scheduling"'),
    ] = None,
    target: Annotated[int | None, typer.Option(min=1, help="accepted environments to reach")] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="environments in flight at once")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="stop after this many LLM tokens")] = None,
    max_hours: Annotated[float | None, typer.Option(min=0.0001, help="stop after this long running")] = None,
    max_environments: Annotated[int | None, typer.Option(min=1, help="stop after trying this many")] = None,
    job: Annotated[str | None, typer.Option(help="a name for the job (default: job-DATE-TIME)")] = None,
    resume: Annotated[str | None, typer.Option(help="resume the job with this name")] = None,
    benchmark_dir: Annotated[
        Path | None, typer.Option(help="BBH/BBEH data to flag contaminated environments against")
    ] = None,
    max_outage: Annotated[
        float | None,
        typer.Option(min=0.01, help="minutes the endpoint may be down before the job stops (default: wait)"),
    ] = None,
) -> None:
    """Grow the library: scout topics, synthesize environments for them, keep the novel ones."""
    from resyn.agents.exemplars import ExemplarsMissing
    from resyn.agents.resilience import EndpointDown
    from resyn.embedded import EmbeddedModelMissing
    from resyn.graph.expansion import (
        JobExists,
        JobFailed,
        JobOptions,
        UnknownJob,
        WorkspaceBusy,
    )
    from resyn.graph.expansion import expand as run_expansion
    from resyn.graph.runtime import open_runtime
    from resyn.memory.contamination import BenchmarkDataMissing
    from resyn.settings import Settings

    if resume is not None and (seed_topics is not None or job is not None):
        raise fail_usage("--resume continues a saved job: its seeds and name stay; only budgets may change")
    budgets = {"target": target, "concurrency": concurrency, "max_tokens": max_tokens,
               "max_hours": max_hours, "max_environments": max_environments}  # fmt: skip
    changes = {name: value for name, value in budgets.items() if value is not None} if resume else {}
    settings = Settings()
    if max_outage is not None:
        settings.llm.max_outage_s = max_outage * 60
    if benchmark_dir is not None:
        if not benchmark_dir.is_dir():
            raise fail_usage(f"no such directory: {benchmark_dir}")
        settings.expansion.benchmark_dir = benchmark_dir
    options = None
    if resume is None:
        topics = [topic.strip() for topic in (seed_topics or "").split(",") if topic.strip()]
        if not topics:
            raise fail_usage('give --seed-topics "topic, topic, …" (or --resume JOB)')
        if target is None:
            raise fail_usage("give --target N: how many accepted environments to reach")
        options = JobOptions(
            name=job or time.strftime("job-%Y%m%d-%H%M%S"),
            seed_topics=topics,
            target=target,
            concurrency=concurrency or settings.expansion.concurrency,
            max_tokens=max_tokens,
            max_hours=max_hours,
            max_environments=max_environments,
        )
    _check_job_name(settings, resume, options.name if options else None)
    checked_models(settings, _ROLES)
    name = resume or options.name

    async def run() -> tuple[JobOptions, str]:
        from resyn.dashboard import Dashboard

        async with open_runtime(settings) as runtime:
            note_embedded(runtime.models, _ROLES)
            models = " · ".join(f"{role}: {runtime.model_name(role)}" for role in _ROLES)
            library = runtime.library
            saved = library.job(name)
            goal = options.target if options else changes.get("target", saved.options["target"])
            dashboard = Dashboard(
                console,
                name,
                models,
                goal,
                library.job_counts(name),
                tokens=library.job_usage(name).total,
                active_seconds=saved.active_seconds if saved else 0.0,
            )
            with dashboard:
                return await run_expansion(
                    runtime, options, resume=resume, changes=changes, on_event=dashboard.on_event
                )

    next_step = f"resume with: resyn expand --resume {name}"
    try:
        with interruptible(next_step):
            finished_options, reason = asyncio.run(run())
    except (JobExists, UnknownJob, WorkspaceBusy, BenchmarkDataMissing) as error:
        raise fail_usage(str(error).strip("'\"")) from None
    except EndpointDown as error:
        print_error(f"{error}: the job is paused; {next_step}")
        raise typer.Exit(ENDPOINT_DOWN) from None
    except (EmbeddedModelMissing, ExemplarsMissing, JobFailed) as error:
        print_error(str(error))
        raise typer.Exit(1) from None
    console.print(f"job {finished_options.name} stopped: {reason}", highlight=False, soft_wrap=True)
    console.print(
        f"next: [bold]resyn report --job {name}[/bold] (what it made and what it cost) · "
        "[bold]resyn ui[/bold] (browse its environments)",
        highlight=False,
    )


def jobs(as_json: Annotated[bool, typer.Option("--json", help="print one JSON array")] = False) -> None:
    """The expansion jobs of this workspace, with their state, counts and tokens."""
    from resyn.memory.library import Library
    from resyn.settings import Settings

    settings = Settings()
    library = Library.of(settings, read_only=True)
    try:
        rows = job_rows(library, settings.prices)
    finally:
        library.close()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        console.print(f"no jobs in {settings.data_dir} yet: start one with resyn expand", highlight=False)
        return
    console.print(f"jobs in {settings.data_dir}", highlight=False)
    console.print(jobs_view(rows, console.width))


def job_rows(library: Library, prices: PriceSettings) -> list[dict[str, Any]]:
    """Each job as `resyn jobs --json` prints it: state, counts, tokens (by role too), times."""
    rows = []
    for record in library.jobs():
        counts, usage = library.job_counts(record.name), library.job_usage(record.name, prices)
        rows.append(
            {
                "job": record.name,
                "state": record.state,
                "accepted": counts.accepted,
                "target": record.options["target"],
                "tried": counts.tried,
                "unfinished": counts.running,  # in flight; for a job that is not running, left for --resume
                "tokens": usage.total,
                "usage": usage.as_dict(),
                "stop_reason": record.stop_reason,
                "active_seconds": record.active_seconds,
                "created": record.created,
                "updated": record.updated,
                # on a shared database (docs/scale.md): who ran it, and who still does
                "workers": [dataclasses.asdict(worker) for worker in record.workers],
            }
        )
    return rows


# What a narrow terminal goes without, first to last: the job's name and state never go.
_OPTIONAL_COLUMNS = ("cost", "updated", "tried", "tokens", "accepted")


def jobs_view(rows: list[dict[str, Any]], width: int) -> Group:
    """The jobs as a table that fits `width` (columns are dropped, never names cut), and under it
    a note per job that is not running: why it stopped, and the command that resumes it."""
    cells = [
        {
            "job": row["job"],
            "state": row["state"],
            "accepted": f"{row['accepted']}/{row['target']}",
            "tried": str(row["tried"]),
            "tokens": f"{row['tokens']:,}",
            "cost": "—" if row["usage"]["cost_usd"] is None else f"${row['usage']['cost_usd']:,.2f}",
            "updated": time.strftime("%Y-%m-%d %H:%M", time.localtime(row["updated"])),
        }
        for row in rows
    ]
    columns = ["job", "state", "accepted", "tried", "tokens", "cost", "updated"]
    widths = {column: max([len(column), *(len(cell[column]) for cell in cells)]) for column in columns}
    for dropped in _OPTIONAL_COLUMNS:
        if sum(widths[column] for column in columns) + 2 * (len(columns) - 1) <= width:
            break
        columns.remove(dropped)
    table = Table(box=None, padding=(0, 2, 0, 0), pad_edge=False, header_style="bold")
    for column in columns:
        # a name wider than the whole terminal folds onto more lines: whole, never cut
        table.add_column(
            column,
            no_wrap=column != "job",
            overflow="fold",
            justify="left" if column in ("job", "state") else "right",
        )
    for cell in cells:
        table.add_row(*(cell[column] for column in columns))
    notes = [note for row in rows for note in _job_notes(row)]
    return Group(table, *([Text(""), *notes] if notes else []))


def _job_notes(row: dict[str, Any]) -> list[Text]:
    name, state = row["job"], row["state"]
    alive = [worker for worker in row["workers"] if worker["alive"]]
    if alive:
        now = time.time()
        beats = ", ".join(
            f"{worker['host']} pid {worker['pid']} (beat {max(0.0, now - worker['heartbeat']):.0f} s ago)"
            for worker in alive
        )
        return [Text(f"{name}: {len(alive)} worker{'s' if len(alive) > 1 else ''}: {beats}")]
    if state == "finished":
        return [Text(f"{name}: {row['stop_reason']}")] if row["stop_reason"] else []
    if state == "running":
        return []
    why = f": {row['stop_reason']}" if row["stop_reason"] else ""
    unfinished = f"; {row['unfinished']} unfinished, resumed by --resume" if row["unfinished"] else ""
    return [Text(f"{name}: {state}{why}{unfinished}"), Text(f"  resyn expand --resume {name}")]


def _check_job_name(settings: Settings, resume: str | None, new_name: str | None) -> None:
    """Fail fast, before kernels and models start, on a job name that cannot be used."""
    from resyn.memory.library import Library

    data_dir = settings.data_dir
    library = Library.of(settings)
    try:
        if resume is not None and library.job(resume) is None:
            raise fail_usage(f"no job {resume!r} in {data_dir}")
        if new_name is not None and library.job(new_name) is not None and not library.claims.shared:
            raise fail_usage(f"a job named {new_name!r} exists; resume it with --resume {new_name}")
    finally:
        library.close()
