"""`resyn report [--job JOB] [--html FILE]`: the funnel, diversity, difficulty profile and costs of
the library or of one job."""

from __future__ import annotations

import json
from pathlib import Path
from statistics import median
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from resyn.commands.ui import DEFAULT_PORT
from resyn.commands.workspace import existing_workspace
from resyn.console import console, fail_usage

if TYPE_CHECKING:
    from resyn.evals.report import CorpusReport


def report(
    html: Annotated[
        Path | None, typer.Option("--html", help="also write the report as a self-contained page")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    cluster_threshold: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="cosine joining two environments into a cluster")
    ] = None,
    job: Annotated[str | None, typer.Option(help="report on this expansion job only")] = None,
    viewer: Annotated[
        str, typer.Option(help="where `resyn ui` serves: the page links each environment there")
    ] = f"http://127.0.0.1:{DEFAULT_PORT}",
) -> None:
    """What the syntheses came to: funnel and rejections, topic diversity, difficulty profile,
    tokens by role and per accepted environment, for the whole library or one --job."""
    import dataclasses

    from resyn.evals.report import build_report
    from resyn.evals.report_html import render_html
    from resyn.memory.library import Library

    settings = existing_workspace()
    if html is not None and html.is_dir():
        raise fail_usage(f"--html wants a file name, and {html} is a directory")
    threshold = (
        cluster_threshold if cluster_threshold is not None else settings.expansion.similar_topic_threshold
    )
    library = Library.of(settings, read_only=True)
    try:
        if job is not None and library.job(job) is None:
            raise fail_usage(f"no job {job!r} in {settings.data_dir}")
        built = build_report(library, cluster_threshold=threshold, job=job, prices=settings.prices)
    finally:
        library.close()
    if html is not None:
        title = f"resyn report: job {job}" if job else "resyn library report"
        try:
            html.write_text(render_html(built, title, viewer), encoding="utf-8")
        except OSError as error:
            raise fail_usage(f"cannot write {html}: {error}") from None
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(built), ensure_ascii=False))
        return
    console.print(report_tables(built))
    if html is not None:
        console.print(f"[green]wrote[/green] {html}", highlight=False)


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def report_tables(built: CorpusReport) -> Group:
    from resyn.evals.report import attempt_rows, cost_text, scope_line

    header = Text(f"resyn report · {scope_line(built)}", style="bold")
    funnel = Table(title="funnel")
    for column in ("stage", "environments", "lost here"):
        funnel.add_column(column, justify="right" if column == "environments" else "left")
    for stage in built.funnel:
        lost = ", ".join(f"{status} {count}" for status, count in stage.lost.items())
        funnel.add_row(stage.name, str(stage.count), lost)
    rejections = Table(title="verdicts")
    for column in ("status", "environments", "example reason"):
        rejections.add_column(column, overflow="fold")
    for status, count in built.statuses.items():
        rejections.add_row(status, str(count), built.reasons.get(status, ""))
    checks = Table(title="failed checks: how many failed each")
    for column in ("check", "syntheses (final report)", "validations (all attempts)"):
        checks.add_column(column, justify="left" if column == "check" else "right")
    for name in dict.fromkeys([*built.final_failed_checks, *built.attempt_failed_checks]):
        checks.add_row(
            name, str(built.final_failed_checks.get(name, 0)), str(built.attempt_failed_checks.get(name, 0))
        )
    attempts = Table(title="attempts")
    attempts.add_column("measure", overflow="fold")
    attempts.add_column("value", justify="right")
    for label, value in attempt_rows(built):
        attempts.add_row(label, value)
    levels = Table(title="difficulty profile (mean probe pass rate)")
    for column in ("level", "accepted", "all probed", "accepted environments"):
        levels.add_column(column, justify="right")
    for level, (accepted, probed, count) in built.difficulty.items():
        levels.add_row(str(level), _rate(accepted), _rate(probed), str(count))
    tokens = Table(title="tokens")
    tokens.add_column("")
    tokens.add_column("tokens", justify="right")
    for name, value in built.tokens.items():
        tokens.add_row(name, f"{value:,.0f}")
    tokens.add_row("cost (USD, estimated)", cost_text(built))
    parts: list = [header, funnel, rejections, checks, attempts, levels, tokens]
    if built.diversity is not None:
        nearest = list(built.diversity.nearest.values())
        spread = f"min {min(nearest):.2f} · median {median(nearest):.2f} · max {max(nearest):.2f}"
        diversity = Table(
            title=f"diversity: nearest-neighbour cosine {spread}; clusters at ≥ {built.diversity.threshold}"
        )
        diversity.add_column("size", justify="right")
        diversity.add_column("environments", overflow="fold")
        for cluster in built.diversity.clusters:
            diversity.add_row(str(len(cluster)), ", ".join(cluster))
        diversity.add_row(str(built.diversity.singletons), "[dim]environments in no cluster[/dim]")
        parts.append(diversity)
    return Group(*parts)
