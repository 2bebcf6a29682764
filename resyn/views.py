"""Rich renderings of contract objects for the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from resyn.contract import CHECK_NAMES, SampledInstance, Status, ValidationReport

if TYPE_CHECKING:
    from resyn.memory.records import AttemptRecord, EnvironmentRecord


def validation_table(paths: list[Path], reports: list[ValidationReport]) -> Group:
    """A summary row per file, then the failed checks of each invalid file with their details."""
    summary = Table(title="validation", show_lines=False)
    summary.add_column("file")
    summary.add_column("name")
    summary.add_column("valid")
    summary.add_column("failed checks")
    summary.add_column("seconds", justify="right")
    details = []
    for path, report in zip(paths, reports, strict=True):
        failed = [check for check in report.checks if not check.passed]
        summary.add_row(
            str(path),
            report.name or "?",
            Text("valid", style="green") if report.valid else Text("invalid", style="red"),
            ", ".join(check.name for check in failed if not check.skipped),
            f"{report.seconds:.2f}",
        )
        if failed:
            table = Table(title=str(path), title_justify="left", show_header=False, expand=True)
            table.add_column("check", style="bold", no_wrap=True)
            table.add_column("detail", overflow="fold")
            for check in failed:
                table.add_row(check.name, Text(check.detail, style="dim" if check.skipped else ""))
            details.append(table)
    return Group(
        summary,
        *details,
        Text(
            f"{sum(r.valid for r in reports)}/{len(reports)} valid · checks: " + ", ".join(CHECK_NAMES),
            style="dim",
        ),
    )


def instance_panel(instance: SampledInstance) -> Panel:
    meta = json.dumps(instance.meta, ensure_ascii=False)
    body = Group(
        Text(instance.question),
        Text(""),
        Text.assemble(("witness: ", "bold green"), instance.witness),
        Text.assemble(("meta: ", "bold"), meta if len(meta) < 600 else meta[:600] + "…", style="dim"),
    )
    return Panel(body, title=f"seed {instance.seed} · difficulty {instance.difficulty}", title_align="left")


STATUS_STYLES: dict[str, str] = {  # environment statuses and the job's event kinds; others are yellow
    Status.ACCEPTED: "green",
    Status.RUNNING: "cyan",
    Status.INVALID: "red",
    Status.ERROR: "red",
    Status.LLM_FAILURE: "magenta",
    "job": "bold",
    "start": "cyan",
    "scout": "blue",
    "round": "bold",
    "stop": "bold",
    "dropped": "dim",
    "paused": "bold yellow",
    "resumed": "bold green",
    "failed": "bold red",
}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, "yellow"))


def _tokens(usage: dict) -> str:
    return f"{usage.get('input_tokens', 0):,} in / {usage.get('output_tokens', 0):,} out tokens"


def progress_line(node: str, update: dict) -> Text:
    """One line per finished graph step, for `resyn synthesize`'s live progress."""
    line = Text(f"  {node:<12} ", style="bold")
    if node in ("draft", "repair") and update.get("status"):
        line.append(f"failed: {update.get('reason', '')}", style="magenta")
    elif node in ("draft", "repair"):
        call = (update.get("llm_calls") or [{}])[0]
        outcome = f"no usable code: {update['problem']}" if update.get("problem") else "wrote a version"
        line.append(
            f"attempt {update.get('attempts')}: {outcome} ({_tokens(call)}, {call.get('seconds', 0)} s)"
        )
    elif node == "validate":
        report = update["report"]
        failed = [check.name for check in report.failures()]
        line.append("valid" if report.valid else "invalid: " + ", ".join(failed),
                    style="green" if report.valid else "red")  # fmt: skip
        line.append(f" ({report.seconds} s)")
    elif node == "sample_probe":
        line.append(f"{len(update.get('probe_instances', []))} probe instances" if not update.get("status")
                    else update.get("reason", ""))  # fmt: skip
    elif node == "solve":
        answer = (update.get("answers") or [{}])[0]
        if answer.get("error"):
            line.append(f"probe {answer.get('index')}: no answer ({answer['error']})", style="magenta")
        else:
            line.append(f"probe {answer.get('index')}: answered {answer.get('answer')!r:.40}")
    elif node == "score_probe":
        rates = update.get("pass_rates")
        line.append(" ".join(f"d{level}={rate:.2f}" for level, rate in rates.items()) if rates else "")
    elif node == "verdict":
        line.append_text(status_text(update.get("status", "")))
        line.append(f": {update.get('reason', '')}")
    return line


def environment_panel(record: EnvironmentRecord) -> Panel:
    rows = Table.grid(padding=(0, 2))
    rows.add_column(style="bold")
    rows.add_column()
    rows.add_row("verdict", status_text(record.status))
    rows.add_row("reason", Text(record.reason))
    rows.add_row("topic", Text(record.topic))
    if record.name:
        rows.add_row("name", Text(f"{record.name}: {record.description or ''}"))
    if record.pass_rates:
        rows.add_row(
            "pass rates", " ".join(f"d{level}={rate:.2f}" for level, rate in record.pass_rates.items())
        )
    if record.contamination:
        flag = record.contamination
        rows.add_row(
            "contamination",
            Text(
                f"near {flag['benchmark']}/{flag['task']} #{flag['example']} (cosine {flag['similarity']}): "
                f"{flag['snippet']}",
                style="red",
            ),
        )
    if record.job:
        rows.add_row("job", Text(record.job))
    rows.add_row("models", Text(f"author {record.author_model} · solver {record.solver_model or '-'}"))
    rows.add_row("tokens", _tokens(record.model_dump()))
    if record.path:
        rows.add_row("file", Text(record.path))
    return Panel(rows, title=f"environment {record.id}", expand=False)


def library_table(records: list[EnvironmentRecord]) -> Table:
    table = Table(title=f"library: {len(records)} environments")
    for column in ("id", "name", "topic", "status", "reason", "tokens"):
        table.add_column(column, overflow="fold" if column == "reason" else "ellipsis")
    for record in records:
        table.add_row(
            record.id,
            record.name or "",
            record.topic,
            status_text(record.status),
            record.reason[:120],
            f"{record.input_tokens + record.output_tokens:,}",
        )
    return table


def attempts_table(attempts: list[AttemptRecord]) -> Table:
    table = Table(title="attempts")
    for column in ("#", "kind", "outcome"):
        table.add_column(column)
    for attempt in attempts:
        if attempt.problem:
            outcome = Text(f"no usable code: {attempt.problem}", style="red")
        elif attempt.report is None:
            outcome = Text("not validated")
        elif attempt.report.valid:
            outcome = Text("valid", style="green")
        else:
            failed = "; ".join(
                f"{check.name}: {check.detail}" for check in attempt.report.failed() if not check.skipped
            )
            outcome = Text(f"invalid: {failed}", style="red")
        table.add_row(str(attempt.number), attempt.kind, outcome)
    return table
