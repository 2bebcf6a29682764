"""A workspace SQLite file, opened so that every failure it meets names the file.

Opening checks only what is cheap: SQLite reads the header and the schema, and finds a file that is
not a database, or one shorter than its header says (a truncated copy), right there. `PRAGMA
quick_check` reads every page (1 ms/MB from the page cache, 20 ms/MB from disk: 4 s for a 200 MB
library), so it is left to `resyn doctor`; damage deeper in is reported by the query that meets it.

Read-only opening writes nothing and works in a read-only folder. A WAL database normally needs
its `-shm` file, which a read-only folder (or a full disk) cannot give it; when no writes wait in
the `-wal` file, the database file alone is the whole database and is opened as immutable.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from resyn.memory.damage import WorkspaceDamaged, remedy, reported

Synchronous = Literal["FULL", "NORMAL"]
"""SQLite's `synchronous` for a writable opening, in WAL mode. FULL: each commit is on disk when it
returns (an fsync per commit). NORMAL: a commit survives the process being killed; only a power
cut can lose the last commits, and no commit waits for an fsync."""


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


def open_database(path: Path, *, read_only: bool, synchronous: Synchronous = "FULL") -> Database:
    """A workspace SQLite file: read-only (never created or written), or writable (created when
    missing, in WAL mode, with `synchronous` as given)."""
    return _open_read_only(path) if read_only else _open_writable(path, synchronous)


def _open_writable(path: Path, synchronous: Synchronous) -> Database:
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
        database.execute(f"PRAGMA synchronous={synchronous}")
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
