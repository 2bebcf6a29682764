"""Damage to a workspace file, reported in one line and never papered over.

When a workspace file is damaged, cannot be read or cannot be written, resyn stops with
`WorkspaceDamaged`: the file, what is wrong (in SQLite's or the system's own words), what to do.
`reported(path)` turns the OS and SQLite errors that mean damage into it; errors that are bugs (a
wrong query, a constraint) stay as they are, loud.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from resyn.memory.layout import CHECKPOINTS, LIBRARY

READING_COMMANDS = "library, jobs, trace, report, export, ui, doctor"

# SQLite's primary result codes (the low byte of an extended code) and errnos, by what they mean.
_SQLITE_KINDS = {
    11: "damaged",  # SQLITE_CORRUPT
    26: "damaged",  # SQLITE_NOTADB
    3: "read-only",  # SQLITE_PERM
    8: "read-only",  # SQLITE_READONLY
    14: "unopenable",  # SQLITE_CANTOPEN
    13: "full",  # SQLITE_FULL
    10: "io",  # SQLITE_IOERR
    5: "busy",  # SQLITE_BUSY
    6: "busy",  # SQLITE_LOCKED
}
_ERRNO_KINDS = {
    errno.EROFS: "read-only",
    errno.EACCES: "denied",
    errno.EPERM: "denied",
    errno.ENOSPC: "full",
    errno.EDQUOT: "full",
    errno.EFBIG: "too-large",
    errno.EIO: "io",
}
_PROBLEMS = {
    "damaged": "damaged",
    "read-only": "cannot be written",
    "unopenable": "cannot be opened",
    "denied": "access denied",
    "full": "cannot be written: the disk is full",
    "too-large": "cannot grow: it reached the largest file size allowed here",
    "io": "cannot be read or written: the disk may be full or failing",
    "busy": "locked by another process",
}


class WorkspaceDamaged(RuntimeError):
    """A workspace file is damaged, lost, unreadable or cannot be written. Its text is the line
    the CLI prints: `<file>: <what is wrong>; <what to do>`."""

    def __init__(self, path: Path, problem: str, remedy: str) -> None:
        super().__init__(f"{path}: {problem}; {remedy}")
        self.path, self.problem, self.remedy = path, problem, remedy


def remedy(kind: str, path: Path) -> str:
    """What the owner of `path` can do about a problem of this kind."""
    folder = path.parent
    if kind == "damaged":
        if path.name == LIBRARY:
            return f"restore it from a backup, or move the workspace {folder} aside to start afresh"
        if path.name == CHECKPOINTS:
            return (
                "restore it from a backup, or move it aside to start afresh (interrupted runs cannot resume)"
            )
        return "restore it from a backup, or move it aside to start afresh"
    if kind == "read-only":
        return f"make {folder} writable, or run a command that only reads ({READING_COMMANDS})"
    if kind in ("unopenable", "denied"):
        return f"check that {folder} exists and that you may read and write it"
    if kind == "busy":
        return "wait for that process to finish, or stop it (resyn jobs lists the running jobs)"
    if kind == "too-large":
        return (
            "raise the file size limit (ulimit -f), or move the workspace to a disk that allows larger files"
        )
    return "free some disk space (or check the disk), then run the command again"


def damage(path: Path, error: BaseException) -> WorkspaceDamaged | None:
    """What an error met on a workspace file means to its owner; None for errors that are bugs
    (a wrong query, a constraint), which must stay loud."""
    found = _kind(error)
    if found is None:
        return None
    kind, detail = found
    return WorkspaceDamaged(path, f"{_PROBLEMS[kind]} ({detail})", remedy(kind, path))


def damage_in(error: BaseException, data_dir: Path) -> WorkspaceDamaged | None:
    """The workspace damage an error that reached the CLI stands for, if any: a WorkspaceDamaged
    (also inside an exception group or as a cause), or an OS or SQLite error let through unnamed."""
    if isinstance(error, WorkspaceDamaged):
        return error
    if isinstance(error, BaseExceptionGroup):
        found = (damage_in(inner, data_dir) for inner in error.exceptions)
        return next((damage for damage in found if damage is not None), None)
    if isinstance(error, OSError) and error.filename:
        return damage(Path(os.fsdecode(error.filename)), error)
    if isinstance(error, sqlite3.Error) and (found := _kind(error)) is not None:
        kind, detail = found
        return WorkspaceDamaged(
            data_dir,
            f"one of its databases: {_PROBLEMS[kind]} ({detail})",
            "run `resyn doctor` to see which file and what to do",
        )
    return damage_in(error.__cause__, data_dir) if error.__cause__ is not None else None


def _kind(error: BaseException) -> tuple[str, str] | None:
    """(kind of problem, the system's own words) for an error that means damage, or None."""
    if isinstance(error, sqlite3.Error) and getattr(error, "sqlite_errorcode", None) is not None:
        kind = _SQLITE_KINDS.get(error.sqlite_errorcode & 0xFF)
        return (kind, str(error)) if kind else None
    if isinstance(error, OSError) and error.errno in _ERRNO_KINDS:
        return _ERRNO_KINDS[error.errno], error.strerror or str(error)
    return None


@contextlib.contextmanager
def reported(path: Path) -> Iterator[None]:
    """Inside the block, an OS or SQLite error that means damage to `path` becomes WorkspaceDamaged."""
    try:
        yield
    except (sqlite3.Error, OSError) as error:
        found = damage(path, error)
        if found is None:
            raise
        raise found from error
