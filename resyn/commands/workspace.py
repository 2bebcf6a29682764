"""What the commands that read a library share: finding the workspace, reading difficulty ranges."""

from __future__ import annotations

from typing import TYPE_CHECKING

from resyn.console import fail_usage

if TYPE_CHECKING:
    from resyn.memory.library import Library
    from resyn.memory.records import EnvironmentRecord
    from resyn.settings import Settings


def existing_workspace() -> Settings:
    """The settings, or a one-line usage error when their workspace holds no library yet (and
    WorkspaceDamaged when it lost the library it had)."""
    from resyn.memory.library import Library
    from resyn.memory.workspace import Workspace
    from resyn.settings import Settings

    settings = Settings()
    if not Workspace.of(settings).has_library():
        Library.of(settings, read_only=True).close()  # raises if sources say there was one
        raise fail_usage(f"no library in {settings.data_dir}: set RESYN_DATA_DIR to the workspace")
    return settings


def environment_by_id(library: Library, identifier: str, unknown_hint: str = "") -> EnvironmentRecord:
    """The library's environment with this id or unique prefix, or a one-line usage error."""
    from resyn.memory.library import AmbiguousEnvironment, UnknownEnvironment

    try:
        return library.get(identifier)
    except AmbiguousEnvironment as ambiguous:
        raise fail_usage(f"{ambiguous}: give more of the id") from None
    except UnknownEnvironment:
        raise fail_usage(f"no environment {identifier!r} in {library.data_dir}{unknown_hint}") from None


def difficulty_levels(text: str) -> list[int]:
    """`1-5`, `3` or `1,3,5` as levels, or a one-line usage error."""
    from resyn.evals.export import parse_difficulties

    try:
        return parse_difficulties(text)
    except ValueError as error:
        raise fail_usage(str(error)) from None
