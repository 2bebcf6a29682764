"""The library's schema: brought to Alembic's head when a library is opened for writing.

The revisions are in memory/migrations. Opening a library that is already current costs one
query (Alembic's own `alembic_version` table, read through the library's connection); only a new
or older library loads Alembic and SQLAlchemy and runs the revisions it lacks.
"""

from __future__ import annotations

import functools

from resyn.memory.database import Database


@functools.cache
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(_script_location()).get_current_head()


def current_revision(database: Database) -> str | None:
    """The revision the library is at; None for one made before migrations, or none at all."""
    if "alembic_version" not in database.tables():
        return None
    row = database.one("SELECT version_num FROM alembic_version")
    return row["version_num"] if row else None


def is_current(database: Database) -> bool:
    return current_revision(database) == head_revision()


def upgrade(database: Database) -> None:
    """Run the revisions the library lacks, under its write lock (one opener migrates at a time)."""
    if is_current(database):
        return
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _script_location())
    with database.migration_connection() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _script_location() -> str:
    from importlib.resources import files

    return str(files("resyn.memory") / "migrations")
