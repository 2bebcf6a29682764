"""Rich renderings of contract objects for the terminal."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from resyn.contract import CHECK_NAMES, SampledInstance, ValidationReport


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
