"""The library on a PostgreSQL server (`RESYN_DATABASE_URL=postgresql://…`): the same statements
as on SQLite, through psycopg.

Statements are written with SQLite's `?` placeholders and become psycopg's `%s` here. The
connection is in autocommit, as the SQLite one is: each statement is its own transaction. A
read-only opening sets `default_transaction_read_only`, so a reading command cannot write even by
mistake. A server that cannot be reached, or goes away, is a one-line WorkspaceDamaged naming the
database without its password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from resyn.memory.damage import READING_COMMANDS, WorkspaceDamaged
from resyn.memory.database import Row

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(url: str) -> bool:
    return url.startswith(SCHEMES)


def shown_url(url: str) -> str:
    """The URL as errors and logs show it: the password replaced by ***."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def sqlalchemy_url(url: str) -> str:
    """The libpq URL a user gives, as SQLAlchemy names the same database through psycopg 3."""
    return "postgresql+psycopg://" + url.split("://", 1)[1]


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, url: str, *, read_only: bool) -> None:
        import psycopg
        from psycopg.rows import dict_row

        self.url = url
        self.path = shown_url(url)
        self.read_only = read_only
        with reachable(self.path):
            self._connection = psycopg.connect(url, autocommit=True, row_factory=dict_row)
        if read_only:
            self.execute("SET default_transaction_read_only = on")

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        statement = sql.replace("%", "%%").replace("?", "%s") if parameters else sql
        with reachable(self.path):
            cursor = self._connection.execute(statement, tuple(parameters) or None)
            return cursor.fetchall() if cursor.description else []

    def one(self, sql: str, parameters: Sequence[Any] = ()) -> Row | None:
        rows = self.execute(sql, parameters)
        return rows[0] if rows else None

    def tables(self) -> set[str]:
        rows = self.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {row["tablename"] for row in rows}

    @contextlib.contextmanager
    def migration_connection(self) -> Iterator[Connection]:
        """A connection of its own (this one may be read-only); the migrations lock the schema
        with an advisory lock (memory/migrations/env.py)."""
        import sqlalchemy

        engine = sqlalchemy.create_engine(sqlalchemy_url(self.url), poolclass=sqlalchemy.NullPool)
        try:
            with reachable(self.path), engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()

    def close(self) -> None:
        self._connection.close()


@contextlib.contextmanager
def reachable(shown: str) -> Iterator[None]:
    """A server that refuses, drops or never answers the connection: one line, naming it."""
    import psycopg
    import sqlalchemy.exc

    try:
        yield
    except psycopg.errors.ReadOnlySqlTransaction:
        raise WorkspaceDamaged(
            shown,  # type: ignore[arg-type]
            "cannot be written (opened read-only)",
            f"run it as a command that writes, or one that only reads ({READING_COMMANDS})",
        ) from None
    except (psycopg.OperationalError, sqlalchemy.exc.OperationalError) as error:
        cause = getattr(error, "orig", None) or error
        if not _lost_connection(cause):
            raise  # a deadlock, a serialization failure: the server answered, and that is a bug here
        reason = str(cause).strip().splitlines()[0]
        raise WorkspaceDamaged(
            shown,  # type: ignore[arg-type]  # a URL, not a path: the message is the same shape
            f"cannot be reached ({reason})",
            "check that the server runs and that RESYN_DATABASE_URL names it",
        ) from None


def _lost_connection(error: BaseException) -> bool:
    """Whether the error is the server out of reach: no connection (no SQLSTATE), a connection
    exception (class 08) or the server shutting down (57P)."""
    state = getattr(error, "sqlstate", None)
    return state is None or state.startswith(("08", "57P"))
