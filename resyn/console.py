"""The terminal: one console for output, one for one-line errors and notes, and the exit codes."""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()
errors = Console(stderr=True)

USAGE_ERROR = 2
ENDPOINT_DOWN = 75  # EX_TEMPFAIL: the endpoint stayed down past --max-outage; the work resumes later
INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


def print_error(message: str) -> None:
    """One line on stderr, never wrapped: scripts and tests read it as one line."""
    errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)


def print_note(message: str) -> None:
    """One line on stderr that the run goes on after, never wrapped."""
    errors.print(f"[yellow]note:[/yellow] {message}", highlight=False, soft_wrap=True)


def fail_usage(message: str) -> typer.Exit:
    print_error(message)
    return typer.Exit(USAGE_ERROR)
