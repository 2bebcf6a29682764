"""What commands do before their work and around it, the same way each time: read the files they
are given, check the model roles they will ask, note when the embedded model answers, and end on
Ctrl-C with exit code 130 and the command that goes on.

cli.py imports it at startup (through the commands), so the model modules load inside the functions."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from resyn.console import INTERRUPTED, fail_usage, print_error, print_note

if TYPE_CHECKING:
    from resyn.models import ModelFactory
    from resyn.settings import Settings


def read_sources(paths: list[Path]) -> list[str]:
    """Every file's text, or a one-line usage error naming the first that cannot be read."""
    sources = []
    for path in paths:
        try:
            sources.append(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise fail_usage(f"no such file: {path}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise fail_usage(f"cannot read {path}: {error}") from None
    return sources


def checked_models(settings: Settings, roles: Iterable[str]) -> ModelFactory:
    """The model factory, once every role's endpoint is set well enough to reach; a one-line usage
    error otherwise, before kernels and models start."""
    from resyn.models import ModelConfigError, ModelFactory

    factory = ModelFactory(settings)
    try:
        for role in roles:
            factory.check(role)
    except ModelConfigError as error:
        raise fail_usage(str(error)) from None
    return factory


def note_embedded(models: ModelFactory | None, roles: Iterable[str]) -> None:
    """The note that the small embedded model answers, when it answers any of the roles."""
    from resyn.embedded import EMBEDDED_WARNING

    if models is not None and any(models.uses_embedded(role) for role in roles):
        print_note(EMBEDDED_WARNING)


@contextlib.contextmanager
def interruptible(next_step: str) -> Iterator[None]:
    """Ctrl-C inside ends the command with one line, `interrupted; {next_step}`, and exit code 130."""
    try:
        yield
    except KeyboardInterrupt:
        print_error(f"interrupted; {next_step}")
        raise typer.Exit(INTERRUPTED) from None
