"""The library's database: the storage interface, and its SQLite implementation (the default).

`Database` is what the library and the trace store speak to: statements with `?` placeholders,
rows that read by column name. `SqliteDatabase` is a workspace file; `PostgresDatabase`
(memory/postgres.py) a server database shared by many workers. The statements above this interface
are the same for both: portable SQL (`ON CONFLICT … DO …`, no `INSERT OR …`), and the schema is
Alembic's (memory/schema.py), declared once with SQLAlchemy types.

A workspace SQLite file is opened so that every failure it meets names the file.

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
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

from resyn.memory.damage import WorkspaceDamaged, remedy, reported

Synchronous = Literal["FULL", "NORMAL"]
"""SQLite's `synchronous` for a writable opening, in WAL mode. FULL: each commit is on disk when it
returns (an fsync per commit). NORMAL: a commit survives the process being killed; only a power
cut can lose the last commits, and no commit waits for an fsync."""


Row = Mapping[str, Any]


class Database(Protocol):
    """One connection to the library's database. `path` names it in every error (a file, or a
    server URL without its password); `dialect` is SQLAlchemy's name for it."""

    path: Path | str
    read_only: bool
    dialect: str

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]: ...

    def one(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None: ...

    def tables(self) -> set[str]: ...

    def migration_connection(self) -> contextlib.AbstractContextManager[Connection]:
        """A SQLAlchemy connection for Alembic, under the database's write lock."""
        ...

    def close(self) -> None: ...


class SqliteDatabase:
    """One connection to a workspace SQLite file; every failure it meets names the file.

    Statements fetch their rows inside the guard: a malformed page met halfway through a scan is
    reported like one met at the start."""

    dialect = "sqlite"

    def __init__(self, path: Path, connection: sqlite3.Connection, read_only: bool) -> None:
        self.path = path
        self.read_only = read_only
        self._connection = connection
        self._connection.row_factory = sqlite3.Row

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        with reported(self.path):
            return self._connection.execute(sql, parameters).fetchall()

    def one(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        rows = self.execute(sql, parameters)
        return rows[0] if rows else None

    def tables(self) -> set[str]:
        """The tables of the file itself (the main schema, not temporary ones)."""
        return {row[0] for row in self.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")}

    @contextlib.contextmanager
    def migration_connection(self) -> Iterator[Connection]:
        """This connection, seen through SQLAlchemy, inside BEGIN IMMEDIATE: another process
        opening the same new file waits, then finds the schema current. The transaction is this
        method's: SQLAlchemy's commit and close of the borrowed connection do nothing."""
        import sqlalchemy

        borrowed = _Borrowed(self._connection)
        engine = sqlalchemy.create_engine(
            "sqlite://", creator=lambda: borrowed, poolclass=sqlalchemy.StaticPool
        )
        self.execute("BEGIN IMMEDIATE")
        try:
            with engine.connect() as connection:
                yield connection
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def close(self) -> None:
        self._connection.close()


class _Borrowed:
    """A sqlite3 connection lent to SQLAlchemy: statements pass through; commit, rollback and
    close are the lender's."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


def open_database(path: Path, *, read_only: bool, synchronous: Synchronous = "FULL") -> SqliteDatabase:
    """A workspace SQLite file: read-only (never created or written), or writable (created when
    missing, in WAL mode, with `synchronous` as given)."""
    return _open_read_only(path) if read_only else _open_writable(path, synchronous)


def _open_writable(path: Path, synchronous: Synchronous) -> SqliteDatabase:
    with reported(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        for target in (path.parent, path) if path.exists() else (path.parent,):
            if not os.access(target, os.W_OK):  # fail before any work, not at the first write
                raise WorkspaceDamaged(
                    path, f"cannot be written ({target} is read-only)", remedy("read-only", path)
                )
        database = SqliteDatabase(path, sqlite3.connect(path, isolation_level=None), read_only=False)
    try:
        database.execute("PRAGMA journal_mode=WAL")
        database.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        database.close()
        raise
    return database


def _open_read_only(path: Path) -> SqliteDatabase:
    uri = f"{path.resolve().as_uri()}?mode=ro"
    with reported(path):
        try:
            return _probed(path, uri)
        except sqlite3.OperationalError:
            if _writes_waiting(path):
                raise  # the -wal holds commits that an immutable opening would not see
            return _probed(path, uri + "&immutable=1")


def _probed(path: Path, uri: str) -> SqliteDatabase:
    """Connect and read the schema: SQLite opens lazily, so damage shows at the first read."""
    connection = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        connection.close()
        raise
    return SqliteDatabase(path, connection, read_only=True)


def _writes_waiting(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    return wal.is_file() and wal.stat().st_size > 0
