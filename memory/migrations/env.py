"""Alembic's entry point: migrate the connection memory/schema.py hands over, in one transaction.

On PostgreSQL several workers may open a new database at once; a transaction-scoped advisory lock
lets one of them create the schema while the others wait and then find it current. On SQLite the
caller holds the file's write lock (BEGIN IMMEDIATE) for the same reason.
"""

from alembic import context
from sqlalchemy import text

_MIGRATION_LOCK = 0x7265_7379_6E00  # "resyn": the advisory lock key every resyn worker takes

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
    context.run_migrations()
