"""The workspace's files, opened so that damage is reported in one line and never papered over.

A workspace is one folder (`RESYN_DATA_DIR`): `library.sqlite` (environments, attempts, jobs, trace
events), `checkpoints.sqlite` (LangGraph's), `topics.json`, the accepted sources in `environments/`,
job logs in `jobs/`, and caches rebuilt when lost (`novelty.faiss`, `benchmark-index/`). When one
of them is damaged, cannot be read or cannot be written, resyn stops with `WorkspaceDamaged`: the
file, what is wrong, what to do. A missing or empty library beside the sources of an existing one
is reported too, never replaced by an empty library.

Opening checks only what is cheap: SQLite reads the header and the schema, and finds a file that is
not a database, or one shorter than its header says (a truncated copy), right there. `PRAGMA
quick_check` reads every page (1 ms/MB from the page cache, 20 ms/MB from disk: 4 s for a 200 MB
library), so it is left to `resyn doctor`; damage deeper in is reported by the query that meets it.

Read-only opening writes nothing and works in a read-only folder. A WAL database normally needs
its `-shm` file, which a read-only folder (or a full disk) cannot give it; when no writes wait in
the `-wal` file, the database file alone is the whole database and is opened as immutable.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

LIBRARY = "library.sqlite"
CHECKPOINTS = "checkpoints.sqlite"
TOPICS = "topics.json"
ENVIRONMENTS = "environments"

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


class Database:
    """One connection to a workspace SQLite file; every failure it meets names the file.

    Statements fetch their rows inside the guard: a malformed page met halfway through a scan is
    reported like one met at the start."""

    def __init__(self, path: Path, connection: sqlite3.Connection, read_only: bool) -> None:
        self.path = path
        self.read_only = read_only
        self._connection = connection
        self._connection.row_factory = sqlite3.Row

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with reported(self.path):
            return self._connection.execute(sql, parameters).fetchall()

    def one(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = self.execute(sql, parameters)
        return rows[0] if rows else None

    def script(self, sql: str) -> None:
        with reported(self.path):
            self._connection.executescript(sql)

    def tables(self) -> set[str]:
        """The tables of the file itself (the main schema, not temporary ones)."""
        return {row[0] for row in self.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")}

    def close(self) -> None:
        self._connection.close()


def open_database(path: Path, *, read_only: bool) -> Database:
    """A workspace SQLite file: read-only (never created or written), or writable (created when
    missing, in WAL mode)."""
    return _open_read_only(path) if read_only else _open_writable(path)


def open_library(data_dir: Path, *, read_only: bool) -> Database:
    """The workspace's `library.sqlite`. Where none exists yet, a read-only opening gets an empty
    one in memory, so reading a new workspace creates nothing; a library lost from a workspace
    that had one (its sources, checkpoints or topics are still there) is WorkspaceDamaged."""
    path = Path(data_dir) / LIBRARY
    with reported(path):
        missing = not path.exists()
        empty = not missing and path.is_file() and path.stat().st_size == 0
    if missing or empty:
        _refuse_a_lost_library(path, "missing" if missing else "empty (0 bytes)")
        if read_only:
            return Database(path, sqlite3.connect(":memory:", isolation_level=None), read_only=False)
    return open_database(path, read_only=read_only)


def _refuse_a_lost_library(path: Path, state: str) -> None:
    folder = path.parent
    with reported(folder):
        sources = len(list((folder / ENVIRONMENTS).glob("*.py")))
        others = [name for name in (CHECKPOINTS, TOPICS) if (folder / name).is_file()]
    found = ([f"{sources} sources in {ENVIRONMENTS}/"] if sources else []) + others
    if found:
        listing = " and ".join([", ".join(found[:-1]), found[-1]] if len(found) > 1 else found)
        raise WorkspaceDamaged(
            path,
            f"{state}, yet {folder} holds {listing} of a library that existed",
            f"restore it from a backup, or move {folder} aside to start afresh"
            " (resyn will not put an empty library in its place)",
        )


def _open_writable(path: Path) -> Database:
    with reported(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        for target in (path.parent, path) if path.exists() else (path.parent,):
            if not os.access(target, os.W_OK):  # fail before any work, not at the first write
                raise WorkspaceDamaged(
                    path, f"cannot be written ({target} is read-only)", remedy("read-only", path)
                )
        database = Database(path, sqlite3.connect(path, isolation_level=None), read_only=False)
    try:
        database.execute("PRAGMA journal_mode=WAL")
    except BaseException:
        database.close()
        raise
    return database


def _open_read_only(path: Path) -> Database:
    uri = f"{path.resolve().as_uri()}?mode=ro"
    with reported(path):
        try:
            return _probed(path, uri)
        except sqlite3.OperationalError:
            if _writes_waiting(path):
                raise  # the -wal holds commits that an immutable opening would not see
            return _probed(path, uri + "&immutable=1")


def _probed(path: Path, uri: str) -> Database:
    """Connect and read the schema: SQLite opens lazily, so damage shows at the first read."""
    connection = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        connection.close()
        raise
    return Database(path, connection, read_only=True)


def _writes_waiting(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    return wal.is_file() and wal.stat().st_size > 0
