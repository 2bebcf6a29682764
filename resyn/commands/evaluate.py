"""`resyn eval library|bbh|bbeh`: a model's accuracy on the library's held-out instances, or on the
seed's benchmarks (BIG-Bench Hard, BIG-Bench Extra Hard) read from their official JSON files."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from resyn.commands.preamble import checked_models, interruptible, note_embedded
from resyn.commands.workspace import difficulty_levels, existing_workspace
from resyn.console import console, fail_usage, print_error

if TYPE_CHECKING:
    from resyn.evals.benchmark_runs import Summary
    from resyn.evals.eval_library import LibraryEval
    from resyn.models import ModelFactory
    from resyn.settings import Settings

eval_app = typer.Typer(help="Evaluate a model: on the library, or on BBH / BBEH.", no_args_is_help=True)

_RUN_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
# The options more than one `eval` command takes (typer copies an option for each command).
_ModelOption = Annotated[
    str | None,
    typer.Option(help="model name on the solver's endpoint (RESYN_SOLVER_BASE_URL or RESYN_LLM_BASE_URL)"),
]
_ConcurrencyOption = Annotated[int, typer.Option(min=1, help="questions in flight at once")]


def _solver_factory(settings: Settings, model: str | None) -> ModelFactory:
    """The model factory with the solver role pointed at `model`; a usage error if it cannot be."""
    if model is not None:
        if settings.model_for("solver").base_url is None:
            raise fail_usage(
                f"--model {model} needs an endpoint: set RESYN_SOLVER_BASE_URL or RESYN_LLM_BASE_URL "
                "(without one, the embedded model answers)"
            )
        settings.solver.model = model
    factory = checked_models(settings, ("solver",))
    note_embedded(factory, ("solver",))
    return factory


@eval_app.command("library")
def library(
    model: _ModelOption = None,
    per_env: Annotated[int, typer.Option(min=1, max=10_000, help="instances per environment")] = 10,
    difficulties: Annotated[str, typer.Option(help="levels to draw from: 1-5, 3 or 1,3,5")] = "1-5",
    concurrency: _ConcurrencyOption = 8,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Accuracy on held-out instances (seeds the probe and exports never use) of the accepted
    environments, by environment and difficulty."""
    from resyn.contract import Status
    from resyn.embedded import EmbeddedModelMissing
    from resyn.evals.eval_library import evaluate_library
    from resyn.memory.library import Library
    from resyn.tools.kernel_pool import KernelPool

    levels = difficulty_levels(difficulties)
    settings = existing_workspace()
    factory = _solver_factory(settings, model)
    workspace = Library.of(settings, read_only=True)
    if not workspace.environments(Status.ACCEPTED):
        workspace.close()
        print_error(f"the library in {settings.data_dir} has no accepted environments to evaluate on")
        raise typer.Exit(1)

    async def run() -> LibraryEval:
        async with KernelPool(settings.kernel) as pool:
            return await evaluate_library(
                workspace,
                factory.endpoint("solver"),
                pool,
                settings,
                per_env=per_env,
                difficulties=levels,
                concurrency=concurrency,
            )

    try:
        with console.status(f"asking {factory.model_name('solver')}…"):
            result = asyncio.run(run())
    except EmbeddedModelMissing as error:
        print_error(str(error))
        raise typer.Exit(1) from None
    finally:
        factory.close()
        workspace.close()
    if as_json:
        typer.echo(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        console.print(library_table(result))
    for environment_id, why in result.failed.items():
        print_error(f"environment {environment_id} was not evaluated: {why}")
    if result.errors:
        print_error(f"{result.errors} questions got no answer from the endpoint (counted as wrong)")


def library_table(result: LibraryEval) -> Table:
    table = Table(title=f"{result.model} on held-out library instances (accuracy, solved/total)")
    table.add_column("environment")
    levels = [
        level for level in result.difficulties if any(level in cells for cells in result.cells.values())
    ]
    for level in levels:
        table.add_column(f"d{level}", justify="right")
    table.add_column("all", justify="right")

    def cell_text(solved: int, total: int) -> str:
        return f"{solved / total:.0%} ({solved}/{total})" if total else "–"

    for name, cells in result.cells.items():
        solved, total = sum(c.solved for c in cells.values()), sum(c.total for c in cells.values())
        row = [
            cell_text(cells[level].solved, cells[level].total) if level in cells else "–" for level in levels
        ]
        table.add_row(name, *row, cell_text(solved, total))
    by_level = result.by_difficulty()
    overall = result.overall()
    table.add_row(
        "[bold]all[/bold]",
        *[cell_text(by_level[level].solved, by_level[level].total) for level in levels],
        f"[bold]{cell_text(overall.solved, overall.total)}[/bold]",
        end_section=True,
    )
    table.caption = f"mean over environments {result.mean_environment_accuracy():.1%}"
    return table


def _benchmark(
    benchmark: str,
    data: Path | None,
    model: str | None,
    tasks: list[str] | None,
    limit: int | None,
    concurrency: int,
    run_name: str | None,
    resume: str | None,
    few_shot: bool,
    as_json: bool,
) -> None:
    from resyn.embedded import EmbeddedModelMissing
    from resyn.evals.benchmark_data import BenchmarkError, load_examples
    from resyn.evals.benchmark_runs import RunFile, RunOptions
    from resyn.evals.eval_benchmarks import run_benchmark
    from resyn.memory.workspace import Workspace
    from resyn.settings import Settings

    settings = Settings()
    data = data or settings.expansion.benchmark_dir
    if data is None:
        raise fail_usage("give --data DIR: the directory that holds bbh/ and bbeh/ in the official layout")
    if not data.is_dir():
        raise fail_usage(f"no such directory: {data}")
    if resume is not None and any(option for option in (model, tasks, limit, run_name, few_shot)):
        raise fail_usage(
            "--resume continues a run with its saved options; give only --resume RUN (and --data)"
        )
    for flag, name in (("--run", run_name), ("--resume", resume)):
        if name is not None and not _RUN_NAME.match(name):
            raise fail_usage(f"{flag} {name!r}: a run name has letters, digits, '.', '_' and '-' only")
    runs = Workspace.of(settings).evals
    try:
        if resume is not None:
            run = RunFile.open(runs / f"{resume}.jsonl")
            if run.options.benchmark != benchmark:
                raise BenchmarkError(
                    f"run {resume} is a {run.options.benchmark} run: resume it with that command"
                )
            options = run.options
        else:
            chosen = [task.strip() for group in tasks or [] for task in group.split(",") if task.strip()]
            options = RunOptions(benchmark, model or "", chosen or None, limit, few_shot)
        examples = load_examples(data, benchmark, options.tasks, options.limit)
    except BenchmarkError as error:
        raise fail_usage(str(error)) from None
    if resume is not None:
        endpoint_set = settings.model_for("solver").base_url is not None
        factory = _solver_factory(settings, options.model if endpoint_set else None)
        if factory.model_name("solver") != options.model:
            raise fail_usage(
                f"run {resume} was asked of {options.model}, but the solver endpoint now serves "
                f"{factory.model_name('solver')}: set the endpoint it used"
            )
    else:
        factory = _solver_factory(settings, model)
        options.model = factory.model_name("solver")
        name = run_name or f"{benchmark}-{_slug(options.model)}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            run = RunFile.create(runs / f"{name}.jsonl", options)
        except BenchmarkError as error:
            raise fail_usage(str(error)) from None
    todo = sum(example.key not in run.done for example in examples)
    answered = 0

    def on_result(_result: object) -> None:
        nonlocal answered
        answered += 1
        status.update(f"{run.path.stem}: {answered}/{todo} asked")

    try:
        with (
            interruptible(f"continue with: resyn eval {benchmark} --resume {run.path.stem}"),
            console.status(f"{run.path.stem}: 0/{todo} asked") as status,
        ):
            summary = asyncio.run(
                run_benchmark(
                    run,
                    examples,
                    factory.endpoint("solver"),
                    data_dir=data,
                    concurrency=concurrency,
                    on_result=on_result,
                )
            )
    except (EmbeddedModelMissing, BenchmarkError) as error:
        print_error(str(error))
        raise typer.Exit(1) from None
    finally:
        factory.close()
    if as_json:
        typer.echo(json.dumps({"run": run.path.stem, **summary.as_json()}, ensure_ascii=False))
    else:
        console.print(benchmark_table(summary, run.path.stem))
    if summary.missing:
        print_error(
            f"{summary.missing} examples got no answer from the endpoint; "
            f"continue with: resyn eval {benchmark} --resume {run.path.stem}"
        )
        raise typer.Exit(1)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:40] or "model"


def benchmark_table(summary: Summary, run: str) -> Table:
    table = Table(title=f"{summary.benchmark.upper()} · {summary.model} · run {run}")
    for column in ("task", "correct", "answered", "accuracy"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for task, (correct, total) in summary.tasks.items():
        table.add_row(task, str(correct), str(total), f"{correct / total:.1%}" if total else "–")
    table.add_row(
        "[bold]all (micro)[/bold]", str(summary.correct), str(summary.answered), f"{summary.accuracy:.1%}",
        end_section=True,
    )  # fmt: skip
    table.add_row("mean over tasks", "", "", f"{summary.macro_accuracy:.1%}")
    if summary.benchmark == "bbeh":
        table.add_row("harmonic mean over tasks", "", "", f"{summary.harmonic_accuracy:.1%}")
    return table


# The options `eval bbh` and `eval bbeh` share.
_TasksOption = Annotated[
    list[str] | None,
    typer.Option(help="tasks to run, comma-separated or repeated (default: all; BBEH Mini: mini)"),
]
_LimitOption = Annotated[int | None, typer.Option(min=1, help="first N examples of each task")]
_ResumeOption = Annotated[str | None, typer.Option(help="continue the run with this name")]
_SummaryJsonOption = Annotated[bool, typer.Option("--json", help="print the summary as JSON")]


@eval_app.command("bbh")
def bbh(
    data: Annotated[Path | None, typer.Option(help="directory holding bbh/ (official layout)")] = None,
    model: _ModelOption = None,
    tasks: _TasksOption = None,
    limit: _LimitOption = None,
    concurrency: _ConcurrencyOption = 8,
    run: Annotated[str | None, typer.Option(help="a name for the run (default: bbh-MODEL-TIME)")] = None,
    resume: _ResumeOption = None,
    few_shot: Annotated[bool, typer.Option("--few-shot", help="the official 3-shot CoT prompts")] = False,
    as_json: _SummaryJsonOption = False,
) -> None:
    """BIG-Bench Hard: per-task and overall exact-match accuracy; results kept per example."""
    _benchmark("bbh", data, model, tasks, limit, concurrency, run, resume, few_shot, as_json)


@eval_app.command("bbeh")
def bbeh(
    data: Annotated[Path | None, typer.Option(help="directory holding bbeh/ (official layout)")] = None,
    model: _ModelOption = None,
    tasks: _TasksOption = None,
    limit: _LimitOption = None,
    concurrency: _ConcurrencyOption = 8,
    run: Annotated[str | None, typer.Option(help="a name for the run (default: bbeh-MODEL-TIME)")] = None,
    resume: _ResumeOption = None,
    as_json: _SummaryJsonOption = False,
) -> None:
    """BIG-Bench Extra Hard: per-task, overall and harmonic-mean accuracy (the paper's fuzzy match)."""
    _benchmark("bbeh", data, model, tasks, limit, concurrency, run, resume, False, as_json)
