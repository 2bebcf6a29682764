"""Benchmark: the validator held against a real third-party suite, twenty reasoning-gym tasks.

    python -m resyn.evals.bench_reasoning_gym [--tasks basic_arithmetic,maze] [--seeds N] [--json]

Each task is wrapped as a contract file exactly as `resyn import reasoning-gym TASK` writes it
(tools/reasoning_gym_import.py), validated in sandboxed kernels with reasoning_gym in the validator's
allow-list, and reported as task → verdict → the checks that failed, with their one-line details.
reasoning-gym is an optional extra: pip install 'resyn[reasoning-gym]'.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from resyn.contract import ValidationReport
from resyn.settings import Settings
from resyn.tools.reasoning_gym_import import (
    ALLOWED_IMPORTS,
    ReasoningGymMissing,
    TaskNotWrappable,
    render_environment,
)
from resyn.tools.validator import validate_sources

# The tasks issue 14 tried, one or more from each of reasoning-gym's families.
TASKS = (
    "basic_arithmetic", "chain_sum", "cryptarithm", "family_relationships", "graph_color", "knights_knaves",
    "leg_counting", "letter_counting", "maze", "mini_sudoku", "number_sorting", "propositional_logic",
    "rubiks_cube", "shortest_path", "spell_backward", "sudoku", "tower_of_hanoi", "word_sorting",
    "zebra_puzzles", "calendar_arithmetic",
)  # fmt: skip


@dataclass
class TaskVerdict:
    task: str
    name: str | None
    valid: bool
    failed: dict[str, str]  # check → detail, for the checks that ran and failed
    skipped: dict[str, str]  # check → why it had nothing to look at or did not run
    seconds: float

    @classmethod
    def of(cls, task: str, report: ValidationReport) -> TaskVerdict:
        return cls(
            task=task,
            name=report.name,
            valid=report.valid,
            failed={check.name: check.detail for check in report.failures()},
            skipped={check.name: check.detail for check in report.checks if check.skipped},
            seconds=report.seconds,
        )


def allowing_reasoning_gym() -> Settings:
    """The run's settings (resyn.toml, RESYN_*) with reasoning_gym allowed. Built anew, not copied:
    Settings hands the allowed imports to the kernels, which preload them, when it is built."""
    allowed = sorted({*Settings().validator.allowed_imports, *ALLOWED_IMPORTS})
    return Settings(validator={"allowed_imports": allowed})


async def validate_tasks(tasks: list[str], settings: Settings, seeds: int | None = None) -> list[TaskVerdict]:
    """Wrap every task and validate the files on one warm pool (`settings` must allow reasoning_gym);
    TaskNotWrappable before any kernel starts."""
    sources = [render_environment(task) for task in tasks]
    reports = await validate_sources(sources, settings, seeds)
    return [TaskVerdict.of(task, report) for task, report in zip(tasks, reports, strict=True)]


def verdict_table(verdicts: list[TaskVerdict], seconds: float) -> Table:
    table = Table(title="reasoning-gym tasks through resyn validate", show_lines=True)
    table.add_column("task", no_wrap=True)
    table.add_column("verdict")
    table.add_column("failed checks", overflow="fold")
    table.add_column("s", justify="right")
    for verdict in verdicts:
        failed = Text("\n").join(
            Text.assemble((f"{name}: ", "bold"), detail) for name, detail in verdict.failed.items()
        )
        if verdict.skipped:
            failed.append(f"{chr(10) if verdict.failed else ''}skipped: {', '.join(verdict.skipped)}", "dim")
        shown = Text("valid", style="green") if verdict.valid else Text("invalid", style="red")
        table.add_row(verdict.task, shown, failed, f"{verdict.seconds:.1f}")
    valid = sum(verdict.valid for verdict in verdicts)
    table.caption = f"{valid}/{len(verdicts)} valid · {seconds:.0f} s in all"
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", help="comma-separated reasoning-gym tasks (default: the twenty)")
    parser.add_argument("--seeds", type=int, help="seeds per difficulty (default: the validator's)")
    parser.add_argument("--json", action="store_true", help="print one JSON array instead of the table")
    args = parser.parse_args(argv)
    if args.seeds is not None and args.seeds < 2:
        parser.error("--seeds must be at least 2")
    tasks = [task.strip() for task in (args.tasks or ",".join(TASKS)).split(",") if task.strip()]
    started = time.perf_counter()
    try:
        verdicts = asyncio.run(validate_tasks(tasks, allowing_reasoning_gym(), args.seeds))
    except (ReasoningGymMissing, TaskNotWrappable) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    if args.json:
        print(json.dumps([asdict(verdict) for verdict in verdicts], ensure_ascii=False))
    else:
        Console().print(verdict_table(verdicts, time.perf_counter() - started))


if __name__ == "__main__":
    main()
