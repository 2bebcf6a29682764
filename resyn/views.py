"""Rich renderings of contract objects for the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from resyn.contract import CHECK_NAMES, SampledInstance, Status, ValidationReport

if TYPE_CHECKING:
    from resyn.memory.records import AttemptRecord, EnvironmentRecord


def validation_table(paths: list[Path], reports: list[ValidationReport], width: int) -> Group:
    """A summary row per file, then the failed checks of each invalid file with their details.

    Each file's path, whole on a line of its own, sits above its NAME and failed checks; the
    seconds are left out when a path needs their room in `width` columns."""
    summary = Table(title="validation", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    summary.add_column("file · name · failed checks", overflow="fold")
    summary.add_column("valid", no_wrap=True)
    with_seconds = max(len(str(path)) for path in paths) + len(" invalid seconds ") <= width
    if with_seconds:
        summary.add_column("seconds", justify="right", no_wrap=True)
    details = []
    for path, report in zip(paths, reports, strict=True):
        failed = [check for check in report.checks if not check.passed]
        about = Text(report.name or "?", style="bold")
        if shown := [check.name for check in failed if not check.skipped]:
            about.append(" · failed: " + ", ".join(shown), style="red")
        verdict = Text("valid", style="green") if report.valid else Text("invalid", style="red")
        seconds = [f"{report.seconds:.2f}"] if with_seconds else []
        summary.add_row(Text(str(path)) + Text("\n  ") + about, verdict, *seconds)
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
    "stop": "bold",
    "dropped": "dim",
    "paused": "bold yellow",
    "resumed": "bold green",
    "failed": "bold red",
}


def status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, "yellow"))


def _tokens(usage: dict, unit: str = " tokens") -> str:
    """`2,760 tokens (2,300 in, 460 out)`: the total first, the word once (or not at all, beside
    a `tokens` label)."""
    given, got = usage.get("input_tokens", 0), usage.get("output_tokens", 0)
    return f"{given + got:,}{unit} ({given:,} in, {got:,} out)"


def progress_line(node: str, update: dict) -> Text:
    """One line per finished graph step, for `resyn synthesize`'s live progress."""
    line = Text(f"  {node:<12} ", style="bold")
    if node in ("draft", "repair") and update.get("status"):
        line.append(f"failed: {update.get('reason', '')}", style="magenta")
    elif node in ("draft", "repair"):
        call = (update.get("llm_calls") or [{}])[0]
        outcome = f"no usable code: {update['problem']}" if update.get("problem") else "wrote a version"
        line.append(
            f"attempt {update.get('attempts')}: {outcome} in {call.get('seconds', 0)} s, {_tokens(call)}"
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
    rows.add_column(style="bold", no_wrap=True)
    rows.add_column(overflow="fold")  # the file's path stays whole
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
    rows.add_row("tokens", _tokens(record.model_dump(), unit=""))
    if record.path:
        rows.add_row("file", Text(record.path))
    return Panel(rows, title=f"environment {record.id}", expand=False)


LIBRARY_WIDE = 120  # columns from which name, topic and reason each get a column of their own
LIBRARY_TOKENS = 100  # columns from which the listing has room for the tokens
REASON_SHOWN = 100  # characters of a reason a listing shows; `library show` and `--json` have it whole


def library_table(records: list[EnvironmentRecord], title: str, width: int, caption: str = "") -> Table:
    """One row per environment, fitted to `width` columns without cutting an id or a name.

    From LIBRARY_WIDE columns name, topic and reason have a column each; narrower, the name and
    topic share a line above the reason (shortened to the one line left beside the id, status
    and tokens), and below LIBRARY_TOKENS the tokens are left out."""
    wide = width >= LIBRARY_WIDE
    fixed = {
        "id": [record.id for record in records],
        "status": [record.status for record in records],
    }
    if width >= LIBRARY_TOKENS:
        fixed["tokens"] = [f"{record.input_tokens + record.output_tokens:,}" for record in records]
    beside = sum(max(map(len, [header, *values])) + 2 for header, values in fixed.items())  # + gaps
    reason_shown = REASON_SHOWN if wide else max(20, min(REASON_SHOWN, width - beside - 1))
    table = Table(
        title=title, caption=caption or None, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0)
    )
    table.add_column("id", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if wide:
        table.add_column("name", overflow="fold")
        table.add_column("topic")
        table.add_column("reason")
    else:
        table.add_column("name · topic / reason", overflow="fold")
    if "tokens" in fixed:
        table.add_column("tokens", justify="right", no_wrap=True)
    for row, record in enumerate(records):
        reason = Text(_shortened(record.reason, reason_shown), style="dim")
        cells: list[str | Text] = [record.id, status_text(record.status)]
        if wide:
            cells += [record.name or "", record.topic, reason]
        else:
            about = Text.assemble((record.name, "bold"), " · ") if record.name else Text()
            cells.append(about + Text(record.topic) + Text("\n") + reason)
        if "tokens" in fixed:
            cells.append(fixed["tokens"][row])
        table.add_row(*cells)
    return table


def _shortened(text: str, limit: int) -> str:
    """`text`, or as many of its first words as fit `limit` characters with an ellipsis: never half
    a word."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:") + " …"


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
